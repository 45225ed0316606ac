# Reads the service catalog and derives, once for every environment, what the resource modules
# need: which services get a database, which event streams exist and who consumes them, and who
# may use Redis, buckets, third-party secrets and the vault key. Creates no resources.

locals {
  raw = yamldecode(file(var.catalog_file)).services

  services = {
    for name, s in local.raw : name => {
      database  = try(s.database, null)
      publishes = try(s.publishes, false)
      consumes  = try(s.consumes, [])
      redis     = try(s.redis, false)
      buckets   = try(s.buckets, [])
      secrets   = try(s.secrets, [])
      kms       = try(s.kms, false)
    }
  }

  databases = { for name, s in local.services : name => s.database if s.database != null }

  topics = {
    for name, s in local.services : "${name}.events" => {
      publishers  = [name]
      subscribers = sort([for consumer, c in local.services : consumer if contains(c.consumes, "${name}.events")])
    } if s.publishes
  }

  consumed_streams = toset(flatten([for s in local.services : s.consumes]))

  buckets = {
    for b in toset(flatten([for s in local.services : s.buckets])) :
    b => sort([for name, s in local.services : name if contains(s.buckets, b)])
  }

  third_party_secrets = {
    for secret in toset(flatten([for s in local.services : s.secrets])) :
    secret => sort([for name, s in local.services : name if contains(s.secrets, secret)])
  }
}
