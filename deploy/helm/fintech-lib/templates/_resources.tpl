{{/*
Container resources. Requests and limits for both CPU and memory are required: a container
without them is refused at render time.
Usage: include "fintech-lib.resources" (dict "resources" $r "path" "services.x.resources")
*/}}
{{- define "fintech-lib.resources" -}}
{{- $r := .resources | default dict -}}
{{- range $kind := list "requests" "limits" -}}
{{- range $res := list "cpu" "memory" -}}
{{- if not (get ((get $r $kind) | default dict) $res) -}}
{{- fail (printf "%s.%s.%s is required: every container sets CPU and memory requests and limits" $.path $kind $res) -}}
{{- end -}}
{{- end -}}
{{- end -}}
requests:
  cpu: {{ $r.requests.cpu | quote }}
  memory: {{ $r.requests.memory | quote }}
limits:
  cpu: {{ $r.limits.cpu | quote }}
  memory: {{ $r.limits.memory | quote }}
{{- end -}}
