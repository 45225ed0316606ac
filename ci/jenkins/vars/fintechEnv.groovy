// The three environments the infrastructure pipeline deploys to, in one place. Names follow
// deploy/terraform (prefix, project, state prefix) and deploy/helm (values file, namespace).
//   Map e = fintechEnv(name: 'staging')
Map call(Map args = [:]) {
    Map defaults = [
        name: 'ci',
        region: 'europe-west1',
        namespace: 'fintech',
        release: 'fintech',
        chart: 'deploy/helm/fintech',
        registry: 'europe-west1-docker.pkg.dev/fintech-shared/fintech-images',
    ]
    Map cfg = defaults + args
    String build = env.BUILD_NUMBER ?: '0'
    Map perEnv = [
        ci: [project: 'fintech-ci', prefix: "fintech-ci-${build}", statePrefix: "fintech/ci/${build}"],
        staging: [project: 'fintech-staging', prefix: 'fintech-stg', statePrefix: 'fintech/staging'],
        production: [project: 'fintech-production', prefix: 'fintech-prod', statePrefix: 'fintech/production'],
    ]
    if (!perEnv.containsKey(cfg.name)) {
        error("fintechEnv: unknown environment '${cfg.name}' (ci, staging, production)")
    }
    Map result = cfg + perEnv[cfg.name]
    result.terraformDir = "deploy/terraform/envs/${cfg.name}"
    result.valuesFile = "deploy/helm/fintech/values-${cfg.name}.yaml"
    result.cluster = "${result.prefix}-gke"
    result.sqlConnectionName = "${result.project}:${result.region}:${result.prefix}-mysql"
    return result
}
