// SonarQube Scanning: clippy findings (JSON) and LCOV coverage are produced, imported by the
// scanner (see ci/jenkins/sonar-project.properties) and the pipeline waits for the quality gate;
// a failed gate aborts the pipeline.
void call(Map args = [:]) {
    Map defaults = [
        rustContainer: 'rust',
        scannerContainer: 'sonar-scanner',
        server: 'sonarqube',
        properties: 'ci/jenkins/sonar-project.properties',
        gateTimeoutMinutes: 15,
    ]
    Map cfg = defaults + args
    container(cfg.rustContainer) {
        sh '''
            mkdir -p reports
            cargo clippy --workspace --all-targets --locked --message-format=json > reports/clippy.json
            cargo llvm-cov --workspace --locked --lcov --output-path reports/lcov.info
        '''
    }
    container(cfg.scannerContainer) {
        withSonarQubeEnv(cfg.server) {
            withEnv(["SONAR_PROPERTIES=${cfg.properties}"]) {
                sh '''
                    sonar-scanner -Dproject.settings="$SONAR_PROPERTIES" \
                      -Dsonar.projectVersion="$BUILD_NUMBER" -Dsonar.scm.revision="$GIT_COMMIT"
                '''
            }
        }
    }
    timeout(time: cfg.gateTimeoutMinutes, unit: 'MINUTES') {
        waitForQualityGate abortPipeline: true
    }
}
