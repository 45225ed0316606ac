// Release plan: `fintech release-plan` resolves the newest pushed digest of every service (the
// highest artifact number <version>-<build> of its current version), compares it with what the
// environment's release runs (`helm get values <release> -o json`, run by the command itself; a
// release not installed yet runs nothing), and writes the images file Helm deploys with
// (images-<env>.yaml: the new digest for changed services, the running digest for the others, so
// Helm leaves unchanged Deployments alone, and the Cloud SQL Auth Proxy's digest resolved from
// the repository:tag pinned in the chart's values.yaml) and release-plan-<env>.json
// ({"changed": [...], "unchanged": [...]}). Both are archived. Returns the list of changed services.
List<String> call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        chartValues: 'deploy/helm/fintech/values.yaml',
        proxyImage: null,                 // default: cloudSql.proxy.image repository:tag of chartValues
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String imagesFile = "images-${cfg.environment}.yaml"
    String planFile = "release-plan-${cfg.environment}.json"
    String proxyImage = cfg.proxyImage ?: proxyImageOf(cfg.chartValues)
    container(cfg.container) {
        withEnv(["ENV_NAME=${cfg.environment}", "REGISTRY=${e.registry}", "NAMESPACE=${e.namespace}",
                 "RELEASE=${e.release}", "IMAGES_FILE=${imagesFile}", "PLAN_FILE=${planFile}",
                 "PROXY_IMAGE=${proxyImage}"]) {
            // set +x: the registry token must not reach the build log
            sh '''
                set +x
                FINTECH_REGISTRY_USERNAME=oauth2accesstoken
                FINTECH_REGISTRY_PASSWORD=$(gcloud auth print-access-token)
                export FINTECH_REGISTRY_USERNAME FINTECH_REGISTRY_PASSWORD
                fintech release-plan --environment "$ENV_NAME" --registry "$REGISTRY" \
                  --namespace "$NAMESPACE" --release "$RELEASE" --proxy-image "$PROXY_IMAGE" \
                  --images-out "$IMAGES_FILE" --plan-out "$PLAN_FILE"
            '''
        }
    }
    archiveArtifacts artifacts: "${imagesFile},${planFile}"
    Map plan = readJSON(file: planFile)
    List<String> changed = (plan.changed ?: []) as List
    echo "releasePlan ${cfg.environment}: changed ${changed ?: 'none'}"
    return changed
}

String proxyImageOf(String valuesFile) {
    Map image = readYaml(file: valuesFile).cloudSql.proxy.image
    return "${image.repository}:${image.tag}"
}
