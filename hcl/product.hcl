# Module product: the catalogue of things a company sells.
# Every table also gets id, created_at, updated_at, created_by and updated_by from the loader.
schema "tenant" {}

table "categories" {
  schema = schema.tenant
  column "name" {
    type = text
    null = false
  }
  column "description" {
    type = text
    null = true
  }
  index "categories_name_key" {
    unique  = true
    columns = [column.name]
  }
}

table "products" {
  schema = schema.tenant
  column "sku" {
    type = text
    null = false
  }
  column "name" {
    type = text
    null = false
  }
  column "description" {
    type = text
    null = true
  }
  column "price" {
    type    = numeric(12, 2)
    null    = false
    default = 0
  }
  column "category_id" {
    type = bigint
    null = true
  }
  index "products_sku_key" {
    unique  = true
    columns = [column.sku]
  }
  index "products_name_idx" {
    columns = [column.name]
  }
  foreign_key "products_category_id_fkey" {
    columns     = [column.category_id]
    ref_columns = [table.categories.column.id]
    on_delete   = SET_NULL
  }
}
