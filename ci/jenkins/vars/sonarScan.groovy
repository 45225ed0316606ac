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
        // llvm-cov runs the Rust tests, and the e-mail tests start aiosmtpd from the shared
        // virtualenv: installed here as scripts/test.sh does, since this stage comes first
        sh '''
            mkdir -p reports
            bash -c '. scripts/lib/tools-venv.sh && tools_venv_install "$PWD/scripts/requirements/test-servers.txt"'
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
