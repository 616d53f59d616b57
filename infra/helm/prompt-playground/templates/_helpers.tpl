{{/* Names and labels. Templates stick to plain Helm (include, toYaml, nindent, quote, default, printf,
     if/else): tests/test_infra.py renders them without helm to check the manifests. */}}

{{- define "pp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pp.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "pp.secretName" -}}
{{- if .Values.secrets.create -}}
{{- include "pp.fullname" . -}}
{{- else -}}
{{- required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "pp.labels" -}}
app.kubernetes.io/name: {{ include "pp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include "pp.selectorLabels" (dict "ctx" . "component" "api") */}}
{{- define "pp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pp.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Settings shared by every process; the secret ones come from the Secret through envFrom. */}}
{{- define "pp.env" -}}
- name: PLAYGROUND_REDIS_PREFIX
  value: {{ .Values.config.redisPrefix | quote }}
- name: PLAYGROUND_PUBLIC_URL
  value: {{ .Values.config.publicUrl | quote }}
- name: PLAYGROUND_SECURE_COOKIES
  value: {{ .Values.config.secureCookies | quote }}
- name: PLAYGROUND_SIGNUP
  value: {{ .Values.config.signup | quote }}
- name: PLAYGROUND_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: PLAYGROUND_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
{{- if .Values.extraEnv }}
{{ toYaml .Values.extraEnv }}
{{- end }}
{{- end -}}

{{- define "pp.envFrom" -}}
- secretRef:
    name: {{ include "pp.secretName" . }}
{{- end -}}
