schema "tenant" {}
enum "order_status" {
  schema = schema.tenant
  values = ["draft", "done"]
}
table "orders" {
  schema = schema.tenant
  column "status" {
    type = enum.order_status
  }
  column "note" {
    type = text
    null = true
  }
}
seed "orders" {
  rows = [ { status = "draft", note = "seeded" } ]
}
