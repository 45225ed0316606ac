{{/*
An image reference pinned by digest: "repository[:tag]@sha256:<64 hex>".
The tag, when given, is only there for people reading the manifest: the runtime pulls by digest.
A missing or malformed digest stops the render with a message naming the value to set.

Usage: include "fintech-lib.images.image" (dict "image" .Values.x.image "path" "x.image")
*/}}
{{- define "fintech-lib.images.image" -}}
{{- $image := .image | default dict -}}
{{- $path := .path -}}
{{- if not $image.repository -}}
{{- fail (printf "%s.repository is required" $path) -}}
{{- end -}}
{{- if not $image.digest -}}
{{- fail (printf "%s.digest is missing: images are deployed by digest only. Set %s.digest to the pushed image's digest (sha256:<64 lowercase hex>), for example from the release plan's images values file" $path $path) -}}
{{- end -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" ($image.digest | toString)) -}}
{{- fail (printf "%s.digest %q is not a valid digest: it must be sha256: followed by 64 lowercase hex characters" $path ($image.digest | toString)) -}}
{{- end -}}
{{- if $image.tag -}}
{{- printf "%s:%s@%s" $image.repository ($image.tag | toString) $image.digest -}}
{{- else -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- end -}}
{{- end -}}
