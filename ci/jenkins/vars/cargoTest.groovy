// Test: the project's test command (scripts/test.sh: every test, including those against a real
// MariaDB it starts itself), with the JUnit report when one is produced.
void call(Map args = [:]) {
    Map defaults = [
        container: 'rust',
        command: './scripts/test.sh',
        junit: 'target/nextest/**/junit.xml',
    ]
    Map cfg = defaults + args
    container(cfg.container) {
        sh cfg.command
    }
    junit testResults: cfg.junit, allowEmptyResults: true
}
