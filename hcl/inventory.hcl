# Module inventory: where stock is kept and how much of each product.
# Every table also gets id, created_at, updated_at, created_by and updated_by from the loader.
schema "tenant" {}

table "warehouses" {
  schema = schema.tenant
  column "code" {
    type = text
    null = false
  }
  column "name" {
    type = text
    null = false
  }
  index "warehouses_code_key" {
    unique  = true
    columns = [column.code]
  }
}

table "stock_items" {
  schema = schema.tenant
  column "product_id" {
    type = bigint
    null = false
  }
  column "warehouse_id" {
    type = bigint
    null = false
  }
  column "quantity" {
    type    = integer
    null    = false
    default = 0
  }
  check "stock_items_quantity_check" {
    expr = "(quantity >= 0)"
  }
  index "stock_items_product_id_warehouse_id_key" {
    unique  = true
    columns = [column.product_id, column.warehouse_id]
  }
  foreign_key "stock_items_product_id_fkey" {
    columns     = [column.product_id]
    ref_columns = [table.products.column.id]
    on_delete   = NO_ACTION
  }
  foreign_key "stock_items_warehouse_id_fkey" {
    columns     = [column.warehouse_id]
    ref_columns = [table.warehouses.column.id]
    on_delete   = NO_ACTION
  }
}
