# State addresses from before modules/environment: everything this environment had at the top
# level now lives in module.environment. These blocks let the first plan after that change move
# the existing objects instead of destroying and recreating them. They can be removed once every
# state of this environment has been applied with this code (terraform plan then shows no moves).

moved {
  from = module.project
  to   = module.environment.module.project
}

moved {
  from = module.network
  to   = module.environment.module.network
}

moved {
  from = module.gke
  to   = module.environment.module.gke
}

moved {
  from = google_artifact_registry_repository_iam_member.nodes_pull
  to   = module.environment.google_artifact_registry_repository_iam_member.nodes_pull
}

moved {
  from = module.workload_identity
  to   = module.environment.module.workload_identity
}

moved {
  from = module.secrets
  to   = module.environment.module.secrets
}

moved {
  from = module.cloudsql
  to   = module.environment.module.cloudsql
}

moved {
  from = module.redis
  to   = module.environment.module.redis
}

moved {
  from = module.pubsub
  to   = module.environment.module.pubsub
}

moved {
  from = module.storage
  to   = module.environment.module.storage
}

moved {
  from = module.endpoints
  to   = module.environment.module.endpoints
}

moved {
  from = module.monitoring
  to   = module.environment.module.monitoring
}

moved {
  from = module.kms
  to   = module.environment.module.kms[0]
}
