{{/*
Helpers of the fintech chart. Shared building blocks (names, labels, images, security context,
probes, resources, checksums) come from the fintech-lib library chart.
*/}}

{{/* The fixed facts of every service container. */}}
{{- define "fintech.httpPort" -}}8080{{- end -}}
{{- define "fintech.uid" -}}65532{{- end -}}
{{- define "fintech.dataDir" -}}/data{{- end -}}

{{/*
Where a service with redis.enabled finds the certificate authorities of the Redis server's
certificate (FINTECH_REDIS__CA_FILE): the key "redis-ca" of its Secret (from redis.caSecret),
mounted read-only on a folder of its own, outside the data dir.
*/}}
{{- define "fintech.redisCaDir" -}}/etc/fintech/redis{{- end -}}
{{- define "fintech.redisCaFile" -}}/etc/fintech/redis/ca.pem{{- end -}}
{{- define "fintech.redisCaKey" -}}redis-ca{{- end -}}

{{/*
Every service, merged over serviceDefaults, as YAML (a map: name -> settings).
Use: $services := include "fintech.services" . | fromYaml
Also fills in the derived settings: image repository, Google service account, Secret Manager ids,
identity's place in the release (auth.identityService): every other service gets
serviceUrls.FINTECH_AUTH__IDENTITY_URL (it verifies tokens with identity's JWKS), and identity's
allowedCallers gets every other service (so the network policies let them reach it); and Redis:
redis.enabled of a service is true only when the release has a Redis (redis.enabled) too, and
such a service reads FINTECH_REDIS__URL from Secret Manager (secretEnv, secret redis.urlSecret),
and the CA certificates from there too (redis.caSecret, a file: see fintech.redisCaFile); SMS:
each provider in sms.providers becomes an external endpoint (FINTECH_SMS__<PROVIDER>__BASE_URL,
its URL and address ranges: the ConfigMap and the egress) and a secretEnv entry (its credential;
vonage also its signature secret, when sms.vonage.signatureSecret names one); and e-mail: with
email.enabled, FINTECH_EMAIL__SMTP_URL becomes a secretEnv entry (email.smtpUrl).
*/}}
{{- define "fintech.services" -}}
{{- $out := dict -}}
{{- range $name, $svc := .Values.services -}}
{{- $s := mergeOverwrite (deepCopy $.Values.serviceDefaults) (deepCopy ($svc | default dict)) -}}
{{- $image := $s.image | default dict -}}
{{- if not $image.repository -}}
{{- $_ := set $image "repository" (printf "%s/%s" $.Values.image.registry $name) -}}
{{- end -}}
{{- $_ := set $s "image" $image -}}
{{- if not $s.gcpServiceAccount -}}
{{- $_ := set $s "gcpServiceAccount" (printf "%s%s@%s.iam.gserviceaccount.com" $.Values.workloadIdentity.gsaPrefix $name $.Values.gcp.projectId) -}}
{{- end -}}
{{- if $s.database.enabled -}}
{{- if not $s.database.secret -}}
{{- $_ := set $s.database "secret" (printf "%s%s-database-url" $.Values.externalSecrets.secretPrefix $name) -}}
{{- end -}}
{{- if not $s.database.instanceConnectionName -}}
{{- $_ := set $s.database "instanceConnectionName" $.Values.cloudSql.instanceConnectionName -}}
{{- end -}}
{{- end -}}
{{- $redis := and $.Values.redis.enabled ($s.redis | default dict).enabled | default false -}}
{{- $_ := set $s "redis" (dict "enabled" $redis) -}}
{{- if $redis -}}
{{- $secrets := deepCopy ($s.secretEnv | default dict) -}}
{{- $_ := set $secrets "FINTECH_REDIS__URL" (dict "secret" $.Values.redis.urlSecret "version" $.Values.redis.secretVersion) -}}
{{- $_ := set $s "secretEnv" $secrets -}}
{{- end -}}
{{- $sms := $s.sms | default dict -}}
{{- if $sms.providers -}}
{{- $endpoints := deepCopy ($s.externalEndpoints | default dict) -}}
{{- $secrets := deepCopy ($s.secretEnv | default dict) -}}
{{- if has "twilio" $sms.providers -}}
{{- $twilio := $sms.twilio | default dict -}}
{{- $_ := set $endpoints "FINTECH_SMS__TWILIO__BASE_URL" (dict "url" $twilio.baseUrl "cidrs" ($twilio.cidrs | default list)) -}}
{{- $_ := set $secrets "FINTECH_SMS__TWILIO__AUTH_TOKEN" ($twilio.authToken | default dict) -}}
{{- end -}}
{{- if has "vonage" $sms.providers -}}
{{- $vonage := $sms.vonage | default dict -}}
{{- $_ := set $endpoints "FINTECH_SMS__VONAGE__BASE_URL" (dict "url" $vonage.baseUrl "cidrs" ($vonage.cidrs | default list)) -}}
{{- $_ := set $secrets "FINTECH_SMS__VONAGE__API_SECRET" ($vonage.apiSecret | default dict) -}}
{{- if ($vonage.signatureSecret | default dict).secret -}}
{{- $_ := set $secrets "FINTECH_SMS__VONAGE__SIGNATURE_SECRET" $vonage.signatureSecret -}}
{{- end -}}
{{- end -}}
{{- $_ := set $s "externalEndpoints" $endpoints -}}
{{- $_ := set $s "secretEnv" $secrets -}}
{{- end -}}
{{- $email := $s.email | default dict -}}
{{- if $email.enabled -}}
{{- $secrets := deepCopy ($s.secretEnv | default dict) -}}
{{- $_ := set $secrets "FINTECH_EMAIL__SMTP_URL" ($email.smtpUrl | default dict) -}}
{{- $_ := set $s "secretEnv" $secrets -}}
{{- end -}}
{{- $_ := set $out $name $s -}}
{{- end -}}
{{- $identity := .Values.auth.identityService -}}
{{- if and $identity (hasKey $out $identity) -}}
{{- $callers := (get $out $identity).allowedCallers | default list -}}
{{- range $name := keys $out | sortAlpha -}}
{{- if and (ne $name $identity) (not (has $name $callers)) -}}
{{- $callers = append $callers $name -}}
{{- end -}}
{{- end -}}
{{- $_ := set (get $out $identity) "allowedCallers" $callers -}}
{{- range $name, $s := $out -}}
{{- if ne $name $identity -}}
{{- $urls := deepCopy ($s.serviceUrls | default dict) -}}
{{- $_ := set $urls "FINTECH_AUTH__IDENTITY_URL" $identity -}}
{{- $_ := set $s "serviceUrls" $urls -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* true when the service reads anything from Secret Manager. */}}
{{- define "fintech.hasSecrets" -}}
{{- if or .database.enabled (gt (len (.secretEnv | default dict)) 0) -}}true{{- end -}}
{{- end -}}

{{/*
Whole seconds the service may spend finishing in-flight requests after SIGTERM: the configured
grace, raised to the route timeout of a public service so no accepted request is cut short.
*/}}
{{- define "fintech.shutdownGraceSeconds" -}}
{{- $grace := .shutdownGraceSeconds | int -}}
{{- if and .route (gt (.route.timeoutSeconds | int) $grace) -}}
{{- $grace = .route.timeoutSeconds | int -}}
{{- end -}}
{{- $grace -}}
{{- end -}}

{{/*
A byte count as an NGINX size ("5184k"), rounded up: the gateway may let through a few bytes more,
never fewer. NGINX Gateway Fabric accepts at most four digits before the unit.
*/}}
{{- define "fintech.nginxSize" -}}
{{- $bytes := . | int64 -}}
{{- $mib := 1048576 -}}
{{- if eq (mod $bytes $mib | int64) 0 -}}
{{- printf "%dm" (div $bytes $mib) -}}
{{- else -}}
{{- $kib := div (add $bytes 1023) 1024 -}}
{{- if le (int64 $kib) 9999 -}}
{{- printf "%dk" $kib -}}
{{- else -}}
{{- printf "%dm" (div (add $bytes (sub $mib 1)) $mib) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Non-secret environment of a service container (the ConfigMap's data).
Args: dict "context" $ "name" $name "svc" $svc
*/}}
{{- define "fintech.serviceEnv" -}}
{{- $ctx := .context -}}
{{- $svc := .svc -}}
{{- $key := include "fintech-lib.names.envKey" .name -}}
FINTECH_HTTP__BIND: "0.0.0.0"
FINTECH_HTTP__PORT: {{ include "fintech.httpPort" . | quote }}
FINTECH_HTTP__SHUTDOWN_GRACE_MS: {{ mul (include "fintech.shutdownGraceSeconds" $svc | int) 1000 | quote }}
{{- if $svc.route }}
FINTECH_HTTP__REQUEST_TIMEOUT_MS: {{ mul (sub ($svc.route.timeoutSeconds | int) 1) 1000 | quote }}
{{- end }}
FINTECH_LOG__LEVEL: {{ $ctx.Values.logLevel | quote }}
FINTECH_GCP__PROJECT_ID: {{ $ctx.Values.gcp.projectId | quote }}
FINTECH_EVENTS__BACKEND: "pubsub"
FINTECH_EVENTS__PUBSUB_PREFIX: {{ $ctx.Values.events.pubsubPrefix | quote }}
FINTECH_MIGRATIONS__ON_START: "false"
{{- if $svc.database.enabled }}
FINTECH_DATABASE__{{ $key }}__MAX_CONNECTIONS: {{ $svc.database.maxConnections | quote }}
{{- end }}
{{- range $k, $target := $svc.serviceUrls }}
{{ $k }}: {{ include "fintech.serviceUrl" (dict "context" $ctx "name" $target) | quote }}
{{- end }}
{{- range $k, $endpoint := $svc.externalEndpoints }}
{{ $k }}: {{ $endpoint.url | quote }}
{{- end }}
{{- range $k, $ref := $svc.kmsKeys }}
{{ $k }}: {{ include "fintech.kmsKeyName" (dict "context" $ctx "ref" $ref) | quote }}
{{- end }}
{{- if $svc.redis.enabled }}
FINTECH_REDIS__KEY_PREFIX: {{ $ctx.Values.redis.keyPrefix | quote }}
FINTECH_REDIS__CA_FILE: {{ include "fintech.redisCaFile" . | quote }}
{{- end }}
{{- if $svc.bucket }}
FINTECH_STORAGE__BACKEND: "gcs"
FINTECH_STORAGE__BUCKET: {{ printf "%s%s" $ctx.Values.storage.bucketPrefix $svc.bucket | quote }}
FINTECH_STORAGE__SIGNER_SERVICE_ACCOUNT: {{ $svc.gcpServiceAccount | quote }}
{{- end }}
{{- with $svc.sms }}
{{- if .providers }}
FINTECH_SMS__PROVIDERS: {{ join "," .providers | quote }}
{{- if has "twilio" .providers }}
{{- $twilio := .twilio | default dict }}
FINTECH_SMS__TWILIO__ACCOUNT_SID: {{ include "fintech.tomlString" ($twilio.accountSid | default "") | quote }}
FINTECH_SMS__TWILIO__FROM: {{ include "fintech.tomlString" ($twilio.from | default "") | quote }}
{{- with $twilio.statusCallback }}
FINTECH_SMS__TWILIO__STATUS_CALLBACK: {{ . | quote }}
{{- end }}
{{- end }}
{{- if has "vonage" .providers }}
{{- $vonage := .vonage | default dict }}
FINTECH_SMS__VONAGE__API_KEY: {{ include "fintech.tomlString" ($vonage.apiKey | default "") | quote }}
FINTECH_SMS__VONAGE__FROM: {{ include "fintech.tomlString" ($vonage.from | default "") | quote }}
{{- with $vonage.statusCallback }}
FINTECH_SMS__VONAGE__STATUS_CALLBACK: {{ . | quote }}
{{- end }}
{{- end }}
{{- range $key, $env := dict "perNumberPerHour" "PER_NUMBER_PER_HOUR" "timeoutMs" "TIMEOUT_MS" "breakerFailures" "BREAKER_FAILURES" "breakerCoolDownMs" "BREAKER_COOL_DOWN_MS" }}
{{- with get $svc.sms $key }}
FINTECH_SMS__{{ $env }}: {{ . | int | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with $svc.email }}
{{- if .enabled }}
FINTECH_EMAIL__FROM: {{ include "fintech.tomlString" .from | quote }}
FINTECH_EMAIL__TIMEOUT_MS: {{ .timeoutMs | int | quote }}
{{- end }}
{{- end }}
{{- range $k, $v := $svc.env }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/*
A string as the configuration reads it from an environment variable: in double quotes, so that a
value of digits (a sender number, an API key) stays a string instead of becoming a number. The
schema keeps quotes and backslashes out of the values this is used for.
*/}}
{{- define "fintech.tomlString" -}}
{{- printf "\"%s\"" . -}}
{{- end -}}

{{/*
The in-cluster URL of another service of the release: its Service "<fullname>-<service>" on the
HTTP port, in the release namespace. No credentials: callers authenticate with their own secrets.
Args: dict "context" $ "name" $service
*/}}
{{- define "fintech.serviceUrl" -}}
{{- printf "http://%s:%s" (include "fintech-lib.names.component" (dict "context" .context "component" .name)) (include "fintech.httpPort" .) -}}
{{- end -}}

{{/*
The TCP port of an external endpoint's https:// URL: the one it names, else 443.
Usage: include "fintech.urlPort" "https://acquirer.example:8443/api"
*/}}
{{- define "fintech.urlPort" -}}
{{- $host := (urlParse .).host -}}
{{- if contains ":" $host -}}
{{- last (splitList ":" $host) -}}
{{- else -}}
443
{{- end -}}
{{- end -}}

{{/*
The full resource name of a Cloud KMS key of the environment's key ring (cloudKms, in project
gcp.projectId), or of one of its versions: what Terraform outputs (vault_kms_key,
vault_kms_fingerprint_key). A name, never key material.
Args: dict "context" $ "ref" {key, version?}
*/}}
{{- define "fintech.kmsKeyName" -}}
{{- $v := .context.Values -}}
{{- $name := printf "projects/%s/locations/%s/keyRings/%s/cryptoKeys/%s" $v.gcp.projectId $v.cloudKms.location $v.cloudKms.keyRing .ref.key -}}
{{- if .ref.version -}}
{{- $name = printf "%s/cryptoKeyVersions/%d" $name (int .ref.version) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* The environment variable holding a service's database URL. */}}
{{- define "fintech.databaseUrlEnv" -}}
{{- printf "FINTECH_DATABASE__%s__URL" (include "fintech-lib.names.envKey" .) -}}
{{- end -}}

{{/*
The Cloud SQL Auth Proxy as a native sidecar: an init container with restartPolicy Always. It
starts (and passes its startup probe) before the service container, and stops after it, so the
service never runs without its database path, and a migration Job still completes.
Args: dict "context" $ "svc" $svc
*/}}
{{- define "fintech.cloudSqlProxy" -}}
{{- $ctx := .context -}}
{{- $proxy := $ctx.Values.cloudSql.proxy -}}
- name: cloud-sql-proxy
  image: {{ include "fintech-lib.images.image" (dict "image" $proxy.image "path" "cloudSql.proxy.image") }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  restartPolicy: Always
  args:
    - --structured-logs
    - --address=127.0.0.1
    - --port={{ $proxy.port }}
    {{- if $ctx.Values.cloudSql.privateIp }}
    - --private-ip
    {{- end }}
    - --health-check
    - --http-address=0.0.0.0
    - --http-port={{ $proxy.healthPort }}
    - --exit-zero-on-sigterm
    - {{ .svc.database.instanceConnectionName | quote }}
  ports:
    - name: proxy-health
      containerPort: {{ $proxy.healthPort }}
      protocol: TCP
  startupProbe:
    {{- include "fintech-lib.probes.http" (dict "path" "/startup" "port" "proxy-health" "probe" (dict "periodSeconds" 1 "failureThreshold" 60)) | nindent 4 }}
  livenessProbe:
    {{- include "fintech-lib.probes.http" (dict "path" "/liveness" "port" "proxy-health" "probe" (dict "periodSeconds" 10 "failureThreshold" 3)) | nindent 4 }}
  readinessProbe:
    {{- include "fintech-lib.probes.http" (dict "path" "/readiness" "port" "proxy-health" "probe" (dict "periodSeconds" 10 "failureThreshold" 3)) | nindent 4 }}
  resources:
    {{- include "fintech-lib.resources" (dict "resources" $proxy.resources "path" "cloudSql.proxy.resources") | nindent 4 }}
  securityContext:
    {{- include "fintech-lib.securityContext.container" (dict "uid" (include "fintech.uid" .)) | nindent 4 }}
{{- end -}}

{{/* Annotations of a Helm hook: created in `order` before install and upgrade. */}}
{{- define "fintech.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
{{- end -}}

{{/*
The spec of a service's ExternalSecret. Also hashed into the pods' checksum/secret annotation, so
pointing at another secret or pinning another version rolls the pods.
Args: dict "context" $ "name" $name "svc" $svc
*/}}
{{- define "fintech.externalSecretSpec" -}}
{{- $ctx := .context -}}
{{- $full := include "fintech-lib.names.component" (dict "context" $ctx "component" .name) -}}
refreshInterval: {{ $ctx.Values.externalSecrets.refreshInterval }}
secretStoreRef:
  kind: SecretStore
  name: {{ $full }}
target:
  name: {{ $full }}
  creationPolicy: Owner
  # Keep the last good copy if the Secret Manager secret is deleted or unreadable.
  deletionPolicy: Retain
data:
  {{- if .svc.database.enabled }}
  - secretKey: database-url
    remoteRef:
      key: {{ .svc.database.secret }}
      version: {{ .svc.database.secretVersion | toString | quote }}
  {{- end }}
  {{- range $env, $ref := .svc.secretEnv }}
  - secretKey: {{ $env }}
    remoteRef:
      key: {{ printf "%s%s" $ctx.Values.externalSecrets.secretPrefix $ref.secret }}
      version: {{ $ref.version | default "latest" | toString | quote }}
  {{- end }}
  {{- if .svc.redis.enabled }}
  # The Redis server's CA certificates: public, mounted as a file (FINTECH_REDIS__CA_FILE).
  - secretKey: {{ include "fintech.redisCaKey" . }}
    remoteRef:
      key: {{ printf "%s%s" $ctx.Values.externalSecrets.secretPrefix $ctx.Values.redis.caSecret }}
      version: {{ $ctx.Values.redis.caSecretVersion | toString | quote }}
  {{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule: the cluster DNS (UDP and TCP 53). */}}
{{- define "fintech.netpol.dns" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
    {{- range .Values.networkPolicy.dns.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{/*
NetworkPolicy egress rules to Google: the GKE metadata server (Workload Identity tokens) and
Google APIs over Private Google Access (Secret Manager, Cloud SQL Admin, Pub/Sub, Storage, IAM
Credentials for signed download links, Cloud KMS for vault's cloud_kms key store...).
NetworkPolicy cannot match host names, so the APIs are reached through the private VIP ranges
that *.googleapis.com resolves to inside the VPC.
*/}}
{{- define "fintech.netpol.google" -}}
{{- range .Values.networkPolicy.metadataServer }}
- to:
    - ipBlock:
        cidr: {{ .cidr }}
  ports:
    - protocol: TCP
      port: {{ .port }}
{{- end }}
- to:
    {{- range .Values.networkPolicy.googleApis.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: 443
{{- end -}}

{{/* NetworkPolicy egress rule: the Memorystore instance (services with redis.enabled). */}}
{{- define "fintech.netpol.redis" -}}
- to:
    {{- range .Values.networkPolicy.redis.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: {{ .Values.networkPolicy.redis.port }}
{{- end -}}

{{/*
NetworkPolicy egress rule: the SMTP server of a service with email.enabled, at its address ranges
(a NetworkPolicy cannot name a host) on the SMTP ports (587 STARTTLS, 465 smtps).
*/}}
{{- define "fintech.netpol.smtp" -}}
# FINTECH_EMAIL__SMTP_URL: the SMTP server (its address ranges, services.<name>.email.smtpCidrs)
- to:
    {{- range .smtpCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .smtpPorts }}
    - protocol: TCP
      port: {{ . | int }}
    {{- end }}
{{- end -}}

{{/*
NetworkPolicy egress rule: any public IPv4 address on the given TCP ports, for a service with
publicEgress.enabled (webhooks, which posts to the URLs merchants choose, so no address range can
name them). Never the ranges of networkPolicy.nonPublicCidrs: the VPC (nodes, pods, Services, the
control plane, Cloud SQL, Memorystore), the metadata server, loopback, carrier-grade NAT... The
other rules still allow what they allow (Google APIs, DNS): NetworkPolicies only add up.
Args: dict "context" $ "ports" [443]
*/}}
{{- define "fintech.netpol.public" -}}
# publicEgress: public IPv4 addresses only (networkPolicy.nonPublicCidrs excepted)
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          {{- range .context.Values.networkPolicy.nonPublicCidrs }}
          - {{ . }}
          {{- end }}
  ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . | int }}
    {{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule: Cloud SQL instances, which the Auth Proxy reaches on port 3307. */}}
{{- define "fintech.netpol.cloudSql" -}}
- to:
    {{- range .Values.networkPolicy.cloudSql.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: 3307
{{- end -}}

{{/* The labels NGINX Gateway Fabric puts on the data plane pods it runs for our Gateway. */}}
{{- define "fintech.gatewayPodLabels" -}}
gateway.networking.k8s.io/gateway-name: {{ include "fintech-lib.names.fullname" . }}
{{- end -}}
