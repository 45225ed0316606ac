// Test Stage: `fintech verify-rollout` fails the pipeline when any pod of the release restarted,
// is in CrashLoopBackOff, cannot pull its image or is not ready within the timeout. Its report is
// archived.
void call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        timeout: '10m',
        maxRestarts: 0,
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String report = "rollout-${cfg.environment}.json"
    container(cfg.container) {
        withEnv(["NAMESPACE=${e.namespace}", "RELEASE=${e.release}", "ROLLOUT_TIMEOUT=${cfg.timeout}",
                 "MAX_RESTARTS=${cfg.maxRestarts}", "REPORT=${report}"]) {
            sh '''
                fintech verify-rollout --namespace "$NAMESPACE" \
                  --selector "app.kubernetes.io/instance=$RELEASE" \
                  --timeout "$ROLLOUT_TIMEOUT" --max-restarts "$MAX_RESTARTS" --report "$REPORT"
            '''
        }
    }
    archiveArtifacts artifacts: report, allowEmptyArchive: true
}
