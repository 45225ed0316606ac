// Release plan: `fintech release-plan` resolves the newest pushed digest of every service, compares
// it with what the environment's release runs, and writes the images file Helm deploys with
// (images-<env>.yaml: the new digest for changed services, the running digest for the others, so
// Helm leaves unchanged Deployments alone) and release-plan-<env>.json ({"changed": [...],
// "unchanged": [...]}). Both are archived. Returns the list of changed services.
List<String> call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String imagesFile = "images-${cfg.environment}.yaml"
    String planFile = "release-plan-${cfg.environment}.json"
    container(cfg.container) {
        withEnv(["ENV_NAME=${cfg.environment}", "REGISTRY=${e.registry}", "NAMESPACE=${e.namespace}",
                 "RELEASE=${e.release}", "IMAGES_FILE=${imagesFile}", "PLAN_FILE=${planFile}"]) {
            sh '''
                fintech release-plan --environment "$ENV_NAME" --registry "$REGISTRY" \
                  --namespace "$NAMESPACE" --release "$RELEASE" \
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
