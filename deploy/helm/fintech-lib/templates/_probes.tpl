{{/*
An HTTP probe.
Usage: include "fintech-lib.probes.http" (dict "path" "/healthz" "port" "http" "probe" $timings)
where $timings may hold initialDelaySeconds, periodSeconds, timeoutSeconds, failureThreshold and
successThreshold. Missing timings get the defaults below.
*/}}
{{- define "fintech-lib.probes.http" -}}
{{- $p := .probe | default dict -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
  scheme: HTTP
initialDelaySeconds: {{ $p.initialDelaySeconds | default 0 }}
periodSeconds: {{ $p.periodSeconds | default 10 }}
timeoutSeconds: {{ $p.timeoutSeconds | default 2 }}
failureThreshold: {{ $p.failureThreshold | default 3 }}
successThreshold: {{ $p.successThreshold | default 1 }}
{{- end -}}
