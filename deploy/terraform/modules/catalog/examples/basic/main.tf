terraform {
  required_version = ">= 1.11.0"
}

module "catalog" {
  source       = "../.."
  catalog_file = "${path.module}/services.yaml"
}

output "topics" {
  value = module.catalog.topics
}

output "databases" {
  value = module.catalog.databases
}
