// SQL Table Setup: creates each service's database if absent and applies its migrations, before
// any service starts, through the Cloud SQL Auth Proxy on 127.0.0.1 (`fintech migrate all`,
// idempotent). The migration user comes from a Jenkins credential backed by a Kubernetes secret.
void call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        port: 3306,
        credentials: null,                // usernamePassword; default cloudsql-migrator-<env>
        proxyTimeoutSeconds: 60,
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String creds = cfg.credentials ?: "cloudsql-migrator-${cfg.environment}"
    container(cfg.container) {
        withCredentials([usernamePassword(credentialsId: creds, usernameVariable: 'DB_USER', passwordVariable: 'DB_PASSWORD')]) {
            withEnv(["SQL_CONNECTION=${e.sqlConnectionName}", "SQL_PORT=${cfg.port}", "PROXY_WAIT=${cfg.proxyTimeoutSeconds}"]) {
                sh '''
                    cloud-sql-proxy --private-ip --address 127.0.0.1 --port "$SQL_PORT" "$SQL_CONNECTION" > cloud-sql-proxy.log 2>&1 &
                    proxy_pid=$!
                    trap 'kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null' EXIT
                    i=0
                    until nc -z 127.0.0.1 "$SQL_PORT"; do
                      i=$((i + 1)); [ "$i" -le "$PROXY_WAIT" ] || { cat cloud-sql-proxy.log; exit 1; }
                      sleep 1
                    done
                    # {service} is replaced by each service's database name (contact_us, ledger, ...)
                    fintech migrate all --database-url "mysql://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${SQL_PORT}/{service}"
                '''
            }
        }
    }
}
