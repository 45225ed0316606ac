{{/*
The restricted security context (Pod Security Standards "restricted", and more).
Not configurable on purpose: every workload runs as a non-root user with a read-only root
filesystem, no privilege escalation, no capabilities and the runtime's default seccomp profile.

Usage: include "fintech-lib.securityContext.pod" (dict "uid" 65532)
*/}}
{{- define "fintech-lib.securityContext.pod" -}}
{{- $uid := .uid | default 65532 | int -}}
runAsNonRoot: true
runAsUser: {{ $uid }}
runAsGroup: {{ $uid }}
fsGroup: {{ $uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Usage: include "fintech-lib.securityContext.container" (dict "uid" 65532) */}}
{{- define "fintech-lib.securityContext.container" -}}
{{- $uid := .uid | default 65532 | int -}}
runAsNonRoot: true
runAsUser: {{ $uid }}
runAsGroup: {{ $uid }}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
