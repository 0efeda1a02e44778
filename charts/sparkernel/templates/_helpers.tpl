{{/*
Shared helpers: names, labels, the values that must agree across pods (secret names,
URLs, ports, memory sizes), and the env and volumes every Spark pod gets. A value that
two resources must agree on is computed here once and included by both.
*/}}

{{- define "sparkernel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>", or the release name alone when it already holds the chart name. */}}
{{- define "sparkernel.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sparkernel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels. Call with (dict "root" $ "component" "worker"). */}}
{{- define "sparkernel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sparkernel.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Standard labels. Call with (dict "root" $ "component" "worker"); component may be "". */}}
{{- define "sparkernel.labels" -}}
helm.sh/chart: {{ include "sparkernel.chart" .root }}
{{ include "sparkernel.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: sparkernel
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/*
A label selector of this release's pods of some components, and the NetworkPolicy peer
made of it (pods of the policy's own namespace only). Call with
(dict "root" $ "components" (list "worker" "edgenode")).
*/}}
{{- define "sparkernel.componentSelector" -}}
matchLabels:
  {{- include "sparkernel.selectorLabels" (dict "root" .root "component" "") | nindent 2 }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: {{ toJson .components }}
{{- end -}}

{{- define "sparkernel.podsOf" -}}
- podSelector:
    {{- include "sparkernel.componentSelector" . | nindent 4 }}
{{- end -}}

{{- define "sparkernel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sparkernel.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sparkernel.authSecretName" -}}
{{- default (printf "%s-spark-auth" (include "sparkernel.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "sparkernel.jupyterSecretName" -}}
{{- default (printf "%s-jupyter" (include "sparkernel.fullname" .)) .Values.edgenode.jupyter.existingSecret -}}
{{- end -}}

{{- define "sparkernel.claimName" -}}
{{- default (printf "%s-data" (include "sparkernel.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{- define "sparkernel.confName" -}}
{{- printf "%s-spark-conf" (include "sparkernel.fullname" .) -}}
{{- end -}}

{{- define "sparkernel.driverServiceName" -}}
{{- printf "%s-driver" (include "sparkernel.fullname" .) -}}
{{- end -}}

{{- define "sparkernel.masterURL" -}}
{{- printf "spark://%s:%d" .Values.master.service.name (int .Values.master.service.port) -}}
{{- end -}}

{{- define "sparkernel.masterUIURL" -}}
{{- printf "http://%s:%d" .Values.master.service.name (int .Values.master.service.webUIPort) -}}
{{- end -}}

{{/* "repository:tag" of images.<name>. Call with (dict "root" $ "image" "spark"). */}}
{{- define "sparkernel.image" -}}
{{- $img := index .root.Values.images .image -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/*
A memory size from values ("2g", "512m", "2Gi", "1tb"...) in MiB, as a bare integer.
Units are binary whatever their spelling, as in Spark. The schema already refused any
other form; the fail below is for a value that got past it (e.g. a --set-string).
*/}}
{{- define "sparkernel.mebibytes" -}}
{{- $v := toString . -}}
{{- $n := regexFind "^[1-9][0-9]*" $v -}}
{{- $unit := lower (trimPrefix $n $v) -}}
{{- if not $n -}}
{{- fail (printf "memory size %q must be a whole number with a unit, e.g. 2g, 512m or 2Gi" $v) -}}
{{- else if has $unit (list "m" "mb" "mi") -}}
{{- int64 $n -}}
{{- else if has $unit (list "g" "gb" "gi") -}}
{{- mul (int64 $n) 1024 -}}
{{- else if has $unit (list "t" "tb" "ti") -}}
{{- mul (int64 $n) 1048576 -}}
{{- else -}}
{{- fail (printf "memory size %q must be a whole number with a unit, e.g. 2g, 512m or 2Gi" $v) -}}
{{- end -}}
{{- end -}}

{{/*
Cross-field checks the schema cannot express. Included once, from the ConfigMap, which
every render has; each failure is a sentence that names the values to change.
*/}}
{{- define "sparkernel.validate" -}}
{{- $w := .Values.workers -}}
{{- if ge (int64 (include "sparkernel.mebibytes" $w.daemonMemory)) (int64 (include "sparkernel.mebibytes" $w.memoryOverhead)) -}}
{{- fail (printf "workers.daemonMemory (%s) must be smaller than workers.memoryOverhead (%s): the worker daemon's heap is part of the overhead" $w.daemonMemory $w.memoryOverhead) -}}
{{- end -}}
{{- if and .Values.auth.encryption (not .Values.auth.enabled) -}}
{{- fail "auth.encryption needs auth.enabled: Spark's RPC encryption uses the authentication secret" -}}
{{- end -}}
{{- include "sparkernel.validatePortSlots" . -}}
{{- if hasKey .Values.spark.defaults "spark.ui.killEnabled" -}}
{{- fail "spark.defaults must not set spark.ui.killEnabled: set spark.uiKillEnabled (the chart writes it for the master and the sessions alike)" -}}
{{- end -}}
{{- if eq (int .Values.master.service.port) (int .Values.master.service.webUIPort) -}}
{{- fail (printf "master.service.port and master.service.webUIPort must differ (both are %d)" (int .Values.master.service.port)) -}}
{{- end -}}
{{- $paths := list .Values.persistence.mountPath .Values.spark.localDir $w.workDir .Values.spark.confDir -}}
{{- range $i, $a := $paths -}}
{{- range $j, $b := $paths -}}
{{- if and (lt $i $j) (or (eq $a $b) (hasPrefix (printf "%s/" (trimSuffix "/" $a)) $b) (hasPrefix (printf "%s/" (trimSuffix "/" $b)) $a)) -}}
{{- fail (printf "persistence.mountPath, spark.localDir, workers.workDir and spark.confDir must not overlap (%s and %s do): the local dirs are node-local emptyDir volumes and must never land on the shared volume" $a $b) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The edgenode's port slots: slot i (0 <= i < n = edgenode.portSlots) uses the driver port
d + 2i, the block manager port b + 2i and the UI port u + i (driver/settings.c). The
driver and block manager ranges interleave without a clash only when b - d is odd; the UI
range u .. u+n-1 must miss both, the last ports must be valid, and JupyterLab's port must
be none of them.
*/}}
{{- define "sparkernel.validatePortSlots" -}}
{{- $e := .Values.edgenode -}}
{{- $n := int64 $e.portSlots -}}
{{- $d := int64 $e.driverPort -}}
{{- $b := int64 $e.blockManagerPort -}}
{{- $u := int64 $e.uiPort -}}
{{- $j := int64 $e.service.port -}}
{{- $dEnd := add $d (mul 2 (sub $n 1)) -}}
{{- $bEnd := add $b (mul 2 (sub $n 1)) -}}
{{- $uEnd := add $u (sub $n 1) -}}
{{- $ranges := printf "with edgenode.portSlots=%d the driver ports are %d-%d and the block manager ports %d-%d (every other port), the Spark UI ports %d-%d" $n $d $dEnd $b $bEnd $u $uEnd -}}
{{- if lt $n 1 -}}
{{- fail (printf "edgenode.portSlots (%d) must be at least 1" $n) -}}
{{- end -}}
{{- if eq (mod (sub $b $d) 2) 0 -}}
{{- fail (printf "edgenode.blockManagerPort (%d) and edgenode.driverPort (%d) must differ by an odd number (e.g. blockManagerPort = driverPort + 1): slot i uses driverPort + 2i and blockManagerPort + 2i, so an even difference makes one slot's block manager port another slot's driver port" $b $d) -}}
{{- end -}}
{{- if or (gt $dEnd 65535) (gt $bEnd 65535) (gt $uEnd 65535) -}}
{{- fail (printf "edgenode ports run past 65535: %s; lower the ports or edgenode.portSlots" $ranges) -}}
{{- end -}}
{{- range $i := until (int $n) -}}
{{- $p := add $u $i -}}
{{- if and (ge $p $d) (le $p $dEnd) (eq (mod (sub $p $d) 2) 0) -}}
{{- fail (printf "edgenode ports overlap: %d is the Spark UI port of slot %d (edgenode.uiPort + %d) and the driver port of slot %d (edgenode.driverPort + 2*%d); %s; move edgenode.uiPort so that its range is clear of the others" $p $i $i (div (sub $p $d) 2) (div (sub $p $d) 2) $ranges) -}}
{{- end -}}
{{- if and (ge $p $b) (le $p $bEnd) (eq (mod (sub $p $b) 2) 0) -}}
{{- fail (printf "edgenode ports overlap: %d is the Spark UI port of slot %d (edgenode.uiPort + %d) and the block manager port of slot %d (edgenode.blockManagerPort + 2*%d); %s; move edgenode.uiPort so that its range is clear of the others" $p $i $i (div (sub $p $b) 2) (div (sub $p $b) 2) $ranges) -}}
{{- end -}}
{{- end -}}
{{- if or (and (ge $j $d) (le $j $dEnd) (eq (mod (sub $j $d) 2) 0)) (and (ge $j $b) (le $j $bEnd) (eq (mod (sub $j $b) 2) 0)) (and (ge $j $u) (le $j $uEnd)) -}}
{{- fail (printf "edgenode.service.port (%d, JupyterLab) is one of the port slots' ports: %s" $j $ranges) -}}
{{- end -}}
{{- range $key := list "spark.master" "spark.driver.port" "spark.blockManager.port" "spark.driver.blockManager.port" "spark.ui.port" "spark.local.dir" -}}
{{- if hasKey $.Values.spark.defaults $key -}}
{{- fail (printf "spark.defaults must not set %s: the chart sets it from its own values (spark.master is the master's Service; the kernel picks the ports of a free slot from edgenode.driverPort, blockManagerPort, uiPort and portSlots, which the Services expose; spark.local.dir is spark.localDir, an emptyDir)" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Properties the kernel sets in every session, from its own defaults unless its environment
variable is set (driver/settings.c), and so over spark-defaults.conf. One of these in
spark.defaults is also passed as that variable, so that it holds in notebooks too.
*/}}
{{- define "sparkernel.kernelOwnedEnv" -}}
{{- dict "spark.executor.cores" "SPARKERNEL_EXECUTOR_CORES" "spark.executor.memory" "SPARKERNEL_EXECUTOR_MEMORY" "spark.dynamicAllocation.enabled" "SPARKERNEL_DYNAMIC_ALLOCATION" "spark.dynamicAllocation.maxExecutors" "SPARKERNEL_MAX_EXECUTORS" "spark.dynamicAllocation.initialExecutors" "SPARKERNEL_INITIAL_EXECUTORS" "spark.dynamicAllocation.executorIdleTimeout" "SPARKERNEL_IDLE_TIMEOUT" "spark.dynamicAllocation.cachedExecutorIdleTimeout" "SPARKERNEL_CACHED_IDLE_TIMEOUT" "spark.app.name" "SPARKERNEL_APP_NAME" "spark.driver.bindAddress" "SPARKERNEL_BIND_ADDRESS" "spark.decommission.enabled" "SPARKERNEL_DECOMMISSION" | toJson -}}
{{- end -}}

{{/*
Every port slot's three ports, as container ports (container true) or as Service ports
that target them by name. Call with (dict "root" $ "container" true).
*/}}
{{- define "sparkernel.slotPorts" -}}
{{- $e := .root.Values.edgenode -}}
{{- range $i := until (int $e.portSlots) }}
{{- range $p := list (list "driver" (add $e.driverPort (mul 2 $i))) (list "blockmgr" (add $e.blockManagerPort (mul 2 $i))) (list "ui" (add $e.uiPort $i)) }}
- name: {{ index $p 0 }}-{{ $i }}
{{- if $.container }}
  containerPort: {{ index $p 1 }}
{{- else }}
  port: {{ index $p 1 }}
  targetPort: {{ index $p 0 }}-{{ $i }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level fields shared by every pod of the chart. */}}
{{- define "sparkernel.podCommon" -}}
serviceAccountName: {{ include "sparkernel.serviceAccountName" . }}
automountServiceAccountToken: false
# Service links would inject SPARK_MASTER_PORT=tcp://... (from the spark-master
# Service), which the master's launcher parses as a port number, and SPARKERNEL_*
# variables that the kernel reads: the chart passes every address explicitly instead.
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Env every Spark process gets: its address, the conf dir, the shared data dir and the auth secret. */}}
{{- define "sparkernel.sparkEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: SPARK_CONF_DIR
  value: {{ .Values.spark.confDir | quote }}
- name: SPARKERNEL_DATA_DIR
  value: {{ .Values.persistence.mountPath | quote }}
{{- if .Values.auth.enabled }}
# Spark reads the RPC authentication secret from this variable before its conf.
- name: _SPARK_AUTH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "sparkernel.authSecretName" . }}
      key: auth-secret
{{- end }}
{{- end -}}

{{/* Env of a driver (the edgenode's kernel and the helm test pod), on top of sparkernel.sparkEnv. */}}
{{- define "sparkernel.driverEnv" -}}
- name: SPARK_MASTER_URL
  value: {{ include "sparkernel.masterURL" . | quote }}
- name: SPARKERNEL_MASTER_UI_URL
  value: {{ include "sparkernel.masterUIURL" . | quote }}
- name: SPARKERNEL_DRIVER_PORT
  value: {{ .Values.edgenode.driverPort | quote }}
- name: SPARKERNEL_BLOCKMANAGER_PORT
  value: {{ .Values.edgenode.blockManagerPort | quote }}
- name: SPARKERNEL_UI_PORT
  value: {{ .Values.edgenode.uiPort | quote }}
{{- with .Values.edgenode.uiProxy }}
# The sessions' UIs through JupyterLab's own URL (jupyter-server-proxy): the links in cells.
- name: SPARKERNEL_UI_PROXY
  value: {{ . | quote }}
{{- end }}
# Slot i of SPARKERNEL_PORT_SLOTS uses the driver and block manager ports + 2i, the UI port + i.
- name: SPARKERNEL_PORT_SLOTS
  value: {{ .Values.edgenode.portSlots | quote }}
# spark.local.dir of the kernel's sessions (its default, /tmp/sparkernel, would win over
# spark-defaults.conf): the local-dir emptyDir.
- name: SPARKERNEL_LOCAL_DIR
  value: {{ .Values.spark.localDir | quote }}
# The executors' class-data-sharing archive: on the shared volume, which the workers mount
# at the same path; their executors dump it, the kernel moves it into place.
- name: SPARKERNEL_EXECUTOR_CDS_DIR
  value: {{ printf "%s/.sparkernel/cds" .Values.persistence.mountPath | quote }}
{{- $owned := include "sparkernel.kernelOwnedEnv" . | fromJson }}
{{- $pairs := list }}
{{- range $key, $value := .Values.spark.defaults }}
{{- if hasKey $owned $key }}
# {{ $key }} from spark.defaults: the kernel would otherwise set its own default.
- name: {{ index $owned $key }}
  value: {{ toString $value | quote }}
{{- else if eq $key "spark.dynamicAllocation.shuffleTracking.enabled" }}
{{- $pairs = append $pairs (printf "%s=%v" $key $value) }}
{{- end }}
{{- end }}
{{- with $pairs }}
# Properties from spark.defaults that the kernel sets itself and reads from no variable of
# their own: its "key=value;..." variable.
- name: SPARKERNEL_SPARK_CONF
  value: {{ join ";" . | quote }}
{{- end }}
- name: HOME
  value: /home/spark
{{- end -}}

{{/* Volumes of every pod: the conf, /tmp, and the shared data claim. */}}
{{- define "sparkernel.commonVolumes" -}}
- name: spark-conf
  configMap:
    name: {{ include "sparkernel.confName" . }}
- name: tmp
  emptyDir: {}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "sparkernel.claimName" . }}
{{- end -}}

{{- define "sparkernel.commonMounts" -}}
- name: spark-conf
  mountPath: {{ .Values.spark.confDir }}
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ .Values.persistence.mountPath }}
{{- end -}}

{{/* The local-dir emptyDir (spark.local.dir), for pods that run executors or a driver. */}}
{{- define "sparkernel.localDirVolume" -}}
- name: spark-local
  emptyDir:
    {{- with .Values.spark.localDirSizeLimit }}
    sizeLimit: {{ . }}
    {{- else }} {}
    {{- end }}
{{- end -}}

{{/* Rolls the pods when spark-defaults.conf changes on an upgrade. */}}
{{- define "sparkernel.confChecksum" -}}
checksum/spark-conf: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}
