key_prefix "service/pg-main/" {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
service_prefix "pg-main" {
  policy = "write"
}
query_prefix "pg-main-" {
  policy = "write"
}
agent_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
