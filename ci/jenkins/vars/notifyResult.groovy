// Final Stage: publishes the result to Bitbucket (always) and sends the e-mail: to the team's
// group on master, to the commit author on other branches.
void call(Map args = [:]) {
    Map defaults = [
        container: 'ops',
        branch: 'master',
        group: 'fintech-delivery@example.com',
        // the sender (the mailer's admin address in jenkins-values.yaml)
        from: 'FINTECH delivery <fintech-delivery@example.com>',
        bitbucketKey: 'fintech-service',
        bitbucketRepository: 'fintech/fintech',
        bitbucketCredentials: 'bitbucket-token',
        smtpCredentials: 'smtp-url',
        bitbucket: true,
        subjectPrefix: 'FINTECH',
    ]
    Map cfg = defaults + args
    String result = currentBuild.currentResult
    String state = result == 'SUCCESS' ? 'SUCCESSFUL' : 'FAILED'
    container(cfg.container) {
        String to = cfg.group
        if (env.BRANCH_NAME != cfg.branch) {
            // the commit author; the group when the workspace has no checkout (an early failure)
            to = sh(returnStdout: true, script: 'git log -1 --format=%ae HEAD 2>/dev/null || true').trim() ?: cfg.group
        }
        String subject = "${cfg.subjectPrefix} ${env.JOB_NAME} #${env.BUILD_NUMBER}: ${result}"
        writeFile file: 'notify-body.txt', text: """${env.JOB_NAME} #${env.BUILD_NUMBER} on ${env.BRANCH_NAME}: ${result}
Commit: ${env.GIT_COMMIT}
Services: ${env.SERVICES ?: '-'}
Details: ${env.BUILD_URL}
"""
        List creds = [string(credentialsId: cfg.smtpCredentials, variable: 'FINTECH_SMTP_URL')]
        if (cfg.bitbucket) {
            creds << string(credentialsId: cfg.bitbucketCredentials, variable: 'FINTECH_BITBUCKET_TOKEN')
        }
        withCredentials(creds) {
            withEnv(["NOTIFY_COMMIT=${env.GIT_COMMIT ?: ''}", "NOTIFY_STATE=${state}", "NOTIFY_KEY=${cfg.bitbucketKey}",
                     "NOTIFY_REPOSITORY=${cfg.bitbucketRepository}", "MAIL_TO=${to}", "MAIL_FROM=${cfg.from}",
                     "MAIL_SUBJECT=${subject}", "NOTIFY_BITBUCKET=${cfg.bitbucket}"]) {
                // Both are attempted: a Bitbucket failure must not swallow the e-mail (and the
                // reverse); the step fails afterwards if either did.
                sh '''
                    failed=0
                    if [ "$NOTIFY_BITBUCKET" = true ] && [ -n "$NOTIFY_COMMIT" ]; then
                      fintech notify bitbucket --state "$NOTIFY_STATE" --commit "$NOTIFY_COMMIT" \
                        --repository "$NOTIFY_REPOSITORY" --key "$NOTIFY_KEY" \
                        --name "$JOB_NAME #$BUILD_NUMBER" --url "$BUILD_URL" || failed=1
                    fi
                    fintech notify email --to "$MAIL_TO" --from "$MAIL_FROM" --subject "$MAIL_SUBJECT" \
                      --body-file notify-body.txt || failed=1
                    exit "$failed"
                '''
            }
        }
    }
}
