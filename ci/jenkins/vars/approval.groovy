// A Yes/No question to one of the release approvers. Returns true only for Yes; No or no answer
// within the time limit returns false (the caller then does nothing). Run it outside an agent so
// that no pod is held while waiting.
// The approvers are users, not a group: Google sign-in sends no group claim. Their IDs (Google
// account e-mails) come from FINTECH_RELEASE_APPROVERS, a global variable that Configuration as
// Code sets from the same list (fintechAccess.releaseApprovers in jenkins-values.yaml) that grants
// them access in the authorization matrix. Without it the step fails instead of asking: an
// `input` without a submitter could be answered by anyone who may build the job.
boolean call(Map args = [:]) {
    Map defaults = [
        message: 'Proceed?',
        submitter: env.FINTECH_RELEASE_APPROVERS,
        timeoutMinutes: 60,
        ok: 'Submit',
    ]
    Map cfg = defaults + args
    if (!cfg.submitter?.trim()) {
        error('approval: no approvers: FINTECH_RELEASE_APPROVERS is empty (fintechAccess.releaseApprovers in ' +
              'ci/jenkins/jenkins-values.yaml)')
    }
    String answer = 'No'
    try {
        timeout(time: cfg.timeoutMinutes, unit: 'MINUTES') {
            answer = input(message: cfg.message, ok: cfg.ok, submitter: cfg.submitter,
                parameters: [choice(name: 'ANSWER', choices: ['No', 'Yes'], description: 'Yes to go ahead, No to do nothing')])
        }
    } catch (org.jenkinsci.plugins.workflow.steps.FlowInterruptedException interrupted) {
        // a No from the input's Abort button or the time limit; anything else (the build itself
        // was aborted) goes on up
        boolean unanswered = interrupted.causes.every { cause ->
            cause.class.simpleName in ['Rejection', 'ExceededTimeout']
        }
        if (!unanswered) {
            throw interrupted
        }
        echo "approval: no answer (${interrupted.causes*.shortDescription.join(', ')}); treated as No"
        answer = 'No'
    }
    echo "approval: '${cfg.message}' answered ${answer}"
    return answer == 'Yes'
}
