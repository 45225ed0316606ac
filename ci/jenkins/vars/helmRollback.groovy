// Rollback: returns the fintech release to the revision before this build's upgrade
// (env.HELM_PREVIOUS_REVISION from helmDeploy; 0 means Helm's previous revision), waits for it and
// checks the pods again.
void call(Map args = [:]) {
    Map defaults = [
        environment: 'staging',
        container: 'ops',
        revision: env.HELM_PREVIOUS_REVISION ?: '0',
        timeout: '15m',
        verify: true,
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    container(cfg.container) {
        withEnv(["NAMESPACE=${e.namespace}", "RELEASE=${e.release}", "REVISION=${cfg.revision}", "HELM_TIMEOUT=${cfg.timeout}"]) {
            sh '''
                helm rollback "$RELEASE" "$REVISION" --namespace "$NAMESPACE" --wait --timeout "$HELM_TIMEOUT"
                helm history "$RELEASE" --namespace "$NAMESPACE" --max 5
            '''
        }
    }
    if (cfg.verify) {
        podHealthGate(environment: cfg.environment)
    }
}
