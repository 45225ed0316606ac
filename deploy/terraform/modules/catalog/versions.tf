terraform {
  # Pure computation over the catalog file: no provider, so it plans and tests offline.
  required_version = ">= 1.11.0"
}
