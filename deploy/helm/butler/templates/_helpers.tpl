{{/* The release's resource name, at most 63 characters. */}}
{{- define "butler.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "butler.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "butler.labels" -}}
{{ include "butler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* More than one replica: stateless, on PostgreSQL and Redis. */}}
{{- define "butler.stateless" -}}
{{- if gt (int .Values.replicaCount) 1 -}}true{{- end -}}
{{- end -}}

{{- define "butler.postgres" -}}
{{- if or .Values.store.postgres.dsn .Values.store.postgres.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "butler.redis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "butler.perUserToken" -}}
{{- if eq .Values.jenkins.credentials "per_user_token" -}}true{{- end -}}
{{- end -}}

{{/* The Secret the chart makes for values given inline. */}}
{{- define "butler.secretName" -}}
{{- include "butler.fullname" . -}}
{{- end -}}

{{/*
Every problem with the values, at once, so that `helm install` fails with
all of them rather than rendering a Butler that refuses to start.
*/}}
{{- define "butler.validate" -}}
{{- $errs := list -}}
{{- if not .Values.publicURL -}}{{- $errs = append $errs "publicURL is required (the external https URL clients use)" -}}{{- end -}}
{{- if not .Values.auth.issuer -}}{{- $errs = append $errs "auth.issuer is required (your identity provider's issuer)" -}}{{- end -}}
{{- if not .Values.jenkins.url -}}{{- $errs = append $errs "jenkins.url is required" -}}{{- end -}}
{{- if lt (int .Values.replicaCount) 1 -}}{{- $errs = append $errs "replicaCount must be at least 1" -}}{{- end -}}
{{- if include "butler.stateless" . -}}
{{- if not (include "butler.postgres" .) -}}{{- $errs = append $errs (printf "replicaCount %d needs a shared PostgreSQL store: set store.postgres.dsn or store.postgres.existingSecret (SQLite is for one replica)" (int .Values.replicaCount)) -}}{{- end -}}
{{- if not (include "butler.redis" .) -}}{{- $errs = append $errs (printf "replicaCount %d needs Redis for shared rate limits: set redis.url or redis.existingSecret" (int .Values.replicaCount)) -}}{{- end -}}
{{- end -}}
{{- if and (include "butler.perUserToken" .) (not (or .Values.vaultKey.value .Values.vaultKey.existingSecret)) -}}{{- $errs = append $errs "vaultKey.value or vaultKey.existingSecret is required with jenkins.credentials per_user_token (openssl rand -base64 32)" -}}{{- end -}}
{{- if and .Values.web.clientID (not (or .Values.web.sessionKey.value .Values.web.sessionKey.existingSecret)) -}}{{- $errs = append $errs "web.sessionKey.value or web.sessionKey.existingSecret is required with web.clientID" -}}{{- end -}}
{{- if and (.Values.store.postgres.dsn) (.Values.store.postgres.existingSecret) -}}{{- $errs = append $errs "store.postgres: set dsn or existingSecret, not both" -}}{{- end -}}
{{- if $errs -}}
{{- fail (printf "\n%s" (join "\n" $errs)) -}}
{{- end -}}
{{- end -}}

{{/* butler.yaml, rendered from the values. Secrets are ${ENV} references. */}}
{{- define "butler.config" -}}
{{- $server := dict "listen" "0.0.0.0:8080" "public_url" .Values.publicURL "metrics_listen" "0.0.0.0:9090" "stateless" (eq (include "butler.stateless" .) "true") -}}
{{- $auth := dict "issuer" .Values.auth.issuer "user_claim" .Values.auth.userClaim "groups_claim" .Values.auth.groupsClaim "scopes_supported" .Values.auth.scopesSupported "allow_guest" .Values.auth.allowGuest -}}
{{- if .Values.auth.audience -}}{{- $_ := set $auth "audience" .Values.auth.audience -}}{{- end -}}
{{- $jenkins := dict "url" .Values.jenkins.url "credentials" .Values.jenkins.credentials "user_template" .Values.jenkins.userTemplate "timeout" .Values.jenkins.timeout -}}
{{- $store := dict "dsn" "sqlite:/var/lib/butler/butler.db" -}}
{{- if include "butler.postgres" . -}}{{- $_ := set $store "dsn" "${BUTLER_STORE_DSN}" -}}{{- end -}}
{{- if include "butler.perUserToken" . -}}
{{- $_ := set $store "vault_key" "${BUTLER_VAULT_KEY}" -}}
{{- if .Values.vaultKey.oldKeys -}}
{{- $old := list -}}
{{- range $i, $_ := .Values.vaultKey.oldKeys -}}{{- $old = append $old (printf "${BUTLER_OLD_VAULT_KEY_%d}" $i) -}}{{- end -}}
{{- $_ := set $store "vault_old_keys" $old -}}
{{- end -}}
{{- end -}}
{{- $limits := dict "per_user_rps" .Values.limits.perUserRPS "burst" .Values.limits.burst -}}
{{- if include "butler.redis" . -}}{{- $_ := set $limits "redis_url" "${BUTLER_REDIS_URL}" -}}{{- end -}}
{{- $cfg := dict "server" $server "auth" $auth "jenkins" $jenkins "store" $store "limits" $limits "audit" (dict "spool_dir" "/var/lib/butler") "log" (dict "level" .Values.log.level "format" .Values.log.format) -}}
{{- if .Values.web.clientID -}}
{{- $_ := set $cfg "web" (dict "client_id" .Values.web.clientID "client_secret" "${BUTLER_WEB_CLIENT_SECRET}" "session_key" "${BUTLER_SESSION_KEY}") -}}
{{- end -}}
{{- if .Values.policy -}}{{- $_ := set $cfg "policy" (dict "file" "/etc/butler/policy.cedar") -}}{{- end -}}
{{- toYaml (mergeOverwrite $cfg .Values.extraConfig) -}}
{{- end -}}

{{/* An env var from a Secret: the existing one, or the chart's. */}}
{{- define "butler.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existing | default .own }}
      key: {{ if .existing }}{{ .existingKey }}{{ else }}{{ .ownKey }}{{ end }}
{{- end -}}
