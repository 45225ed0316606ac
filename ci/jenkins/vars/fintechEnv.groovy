// The three environments the infrastructure pipeline deploys to, in one place. Names follow
// deploy/terraform (prefix, project, state prefix) and deploy/helm (values file, namespace).
//   Map e = fintechEnv(name: 'staging')
// Two Helm releases per environment: the fintech chart (release, namespace) and the NGINX Gateway
// Fabric entry point it routes through (gatewayRelease, gatewayNamespace), whose NGINX data plane
// runs in the fintech namespace for the chart's Gateway (gatewayName: the chart names it after
// the release, so its pods carry gateway.networking.k8s.io/gateway-name=<release>).
// privateEndpoint: kubectl and helm reach the GKE control plane on its private IP
// (`get-credentials --internal-ip`); it must be true where Terraform makes the endpoint private
// (gke.private_endpoint in deploy/terraform/envs/<env>/main.tf), and then the Jenkins agents'
// network must route to that environment's VPC.
Map call(Map args = [:]) {
    Map defaults = [
        name: 'ci',
        region: 'europe-west1',
        namespace: 'fintech',
        release: 'fintech',
        chart: 'deploy/helm/fintech',
        gatewayRelease: 'ngf',
        gatewayNamespace: 'nginx-gateway',
        gatewayChart: 'oci://ghcr.io/nginx/charts/nginx-gateway-fabric',
        registry: 'europe-west1-docker.pkg.dev/fintech-shared/fintech-images',
    ]
    Map cfg = defaults + args
    String build = env.BUILD_NUMBER ?: '0'
    Map perEnv = [
        ci: [project: 'fintech-ci', prefix: "fintech-ci-${build}", statePrefix: "fintech/ci/${build}",
             privateEndpoint: false],
        staging: [project: 'fintech-staging', prefix: 'fintech-stg', statePrefix: 'fintech/staging',
                  privateEndpoint: false],
        production: [project: 'fintech-production', prefix: 'fintech-prod', statePrefix: 'fintech/production',
                     privateEndpoint: false],
    ]
    if (!perEnv.containsKey(cfg.name)) {
        error("fintechEnv: unknown environment '${cfg.name}' (ci, staging, production)")
    }
    Map result = cfg + perEnv[cfg.name]
    result.terraformDir = "deploy/terraform/envs/${cfg.name}"
    result.valuesFile = "deploy/helm/fintech/values-${cfg.name}.yaml"
    result.cluster = "${result.prefix}-gke"
    result.sqlConnectionName = "${result.project}:${result.region}:${result.prefix}-mysql"
    result.gatewayName = result.gatewayName ?: result.release
    return result
}
