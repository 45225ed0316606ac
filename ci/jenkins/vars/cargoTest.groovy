// Test: the project's test command (scripts/test.sh: formatting, clippy, every test including those
// against a real MariaDB it starts itself as the agent's user, and the Helm, Terraform and Jenkins
// checks), with the JUnit report when one is produced. --skip-image-checks leaves out
// scripts/check-images.sh, which needs root, buildah and a private mount namespace that this
// non-root agent container does not have: the images are built and checked (non-root user,
// labels; digest on push) by the Docker/Image Build and Image Push stages in the "buildah"
// container, and run read-only as non-root by the infrastructure pipeline's CI environment.
void call(Map args = [:]) {
    Map defaults = [
        container: 'rust',
        command: './scripts/test.sh --skip-image-checks',
        junit: 'target/nextest/**/junit.xml',
    ]
    Map cfg = defaults + args
    container(cfg.container) {
        sh cfg.command
    }
    junit testResults: cfg.junit, allowEmptyResults: true
}
