# sparkernel: a Jupyter kernel in C for PySpark on a Spark standalone cluster.
#   make            build build/bin/sparkernel and the kernelspec under build/share/jupyter
#   make test       unit, integration, sanitizer, chart and fuzz tests (what CI runs)
#   make asan       the same kernel with AddressSanitizer and UBSan, under build-asan/
#   make run        the main job (see README.md)
#   make lab        JupyterLab with the kernel and the notebooks on a local cluster
#   make bench      benchmarks against ipykernel; writes tests/bench/results.md
#   make soak       10,000 checked requests: kernel RSS, then valgrind memcheck;
#                   writes tests/soak/results.md
#   make install PREFIX=/usr/local

PREFIX   ?= /usr/local
SHELL    := /bin/bash
CC       ?= cc
PKGS     := libzmq jansson libsodium
# libcurl: headers at build time, the library loaded on first use (driver/curl_lazy.c).
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
VENV     ?= $(CURDIR)/.venv
PYTHON   ?= $(VENV)/bin/python
BUILD    ?= build
SANITIZE ?=

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT      ?= -O2 -g
# The project's flags always apply; CFLAGS/LDFLAGS from the command line add to them.
override CFLAGS  := $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
                    -Wno-unused-parameter -Wno-format-truncation $(PKG_CFLAGS) $(CURL_CFLAGS) $(SANITIZE) $(CFLAGS)
override LDFLAGS := -Wl,--as-needed $(SANITIZE) $(LDFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -ldl

KERNEL_SRC := kernel/log.c kernel/frame.c kernel/executor.c kernel/supervisor.c kernel/connection.c kernel/auth.c kernel/wire.c kernel/message.c \
              kernel/heartbeat.c kernel/utf8.c kernel/history.c kernel/iopub.c \
              kernel/dispatch.c kernel/debugger.c kernel/execution.c kernel/loop.c kernel/redact.c
DRIVER_SRC := driver/curl_lazy.c driver/http.c driver/settings.c driver/ports.c driver/render.c driver/jfield.c \
              driver/master.c driver/magics_parse.c driver/magics.c driver/progress.c driver/sharing.c driver/session.c driver/cell.c driver/spark.c
LIB_SRC    := $(KERNEL_SRC) $(DRIVER_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
KERNEL_OBJ := $(KERNEL_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   := $(BUILD)/obj/driver/main.o
BIN        := $(BUILD)/bin/sparkernel
SPEC_DIR   := $(BUILD)/share/jupyter/kernels/sparkernel
PYDIR      := $(CURDIR)/driver/python

UNIT_SRC   := $(wildcard tests/unit/test_*.c) tests/support/fake_http.c
UNIT_BIN   := $(BUILD)/tests/unit_tests
# The Spark extension through its seam, with a fake kernel core (tests/driver/): the driver's
# objects and the core's log, utf8 and redact, never the rest of the core.
DRIVER_TEST_SRC := $(wildcard tests/driver/test_*.c) tests/support/fake_http.c
DRIVER_TEST_BIN := $(BUILD)/tests/driver_tests
DRIVER_TEST_OBJ := $(DRIVER_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/kernel/log.o \
                   $(BUILD)/obj/kernel/utf8.o $(BUILD)/obj/kernel/redact.o
PROBE_BIN  := $(BUILD)/bin/master_probe
# The kernel core alone (no driver/ object) with a fake extension that records its hooks:
# tests/integration/test_core_seam.py.
CORE_BIN   := $(BUILD)/bin/core_kernel

.PHONY: all check-seam check-libs deps deps-run main-job kernelspec test test-stages test-all integration-core integration-spark core-ci integration-core-plain setup-tests test-compat-all asan-build asan-unit asan-core asan-spark unit integration test-compat asan charts run lab bench bench-kernel bench-spark bench-sharing bench-notebooks bench-wild bench-elastic soak fuzz install \
        clean format \
        format-check cluster-start cluster-stop

all: check-seam $(BIN) kernelspec

# kernel/ is a Jupyter kernel and nothing else: what plugs into it (driver/) goes through
# kernel/extension.h, and the core never includes the driver.
check-seam:
	@! grep -n '#include *"\.\./driver/' kernel/*.c kernel/*.h || \
	    { echo "kernel/ must not include driver/ (use kernel/extension.h)" >&2; exit 1; }

# `make` alone installs nothing: say what is missing and how to get it (make deps, or the
# README's two commands, which install on their own).
check-libs:
	@pkg-config --exists $(PKGS) libcurl 2>/dev/null || { echo "missing C libraries \
	(pkg-config cannot find: $$(for p in $(PKGS) libcurl; do pkg-config --exists $$p 2>/dev/null || printf '%s ' $$p; done)): \
	run 'make deps' (as root or with sudo) first" >&2; exit 1; }
	@[ -x $(PYTHON) ] || { echo "no Python venv at $(VENV): run 'make deps' first" >&2; exit 1; }

# What `make run` and `make test` install before anything else (tests/support/deps.sh):
# system packages with apt (root or sudo), the pinned venvs and the lab test's npm packages;
# a second run costs under a second (stamp files keyed on the requirement files).
deps:
	@bash tests/support/deps.sh test
deps-run:
	@bash tests/support/deps.sh run

$(BUILD)/obj/%.o: %.c $(wildcard kernel/*.h driver/*.h) | check-libs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSPARKERNEL_PYDIR='"$(PYDIR)"' -c $< -o $@

$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The kernelspec points at this build: JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter finds it.
kernelspec: $(BIN)
	@mkdir -p $(SPEC_DIR)
	$(PYTHON) kernelspec/render.py --bin $(CURDIR)/$(BIN) --python $(PYTHON) \
	    --pythonpath $(PYDIR) --out $(SPEC_DIR)

$(UNIT_BIN): $(UNIT_SRC) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-field-initializers -o $@ $(UNIT_SRC) $(LIB_OBJ) \
	    $(LDFLAGS) $(LDLIBS) -lcriterion

$(DRIVER_TEST_BIN): $(DRIVER_TEST_SRC) $(DRIVER_TEST_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-field-initializers -o $@ $(DRIVER_TEST_SRC) $(DRIVER_TEST_OBJ) \
	    $(LDFLAGS) $(LDLIBS) -lcriterion

# driver/master.c from the command line, for tests/integration/test_master_live.py.
$(PROBE_BIN): tests/support/master_probe.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(CORE_BIN): tests/support/core_kernel.c $(KERNEL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# Criterion workers report leaks and UB on stderr without failing the test: the log is
# checked too, so a sanitizer report fails the target.
unit: $(UNIT_BIN) $(DRIVER_TEST_BIN)
	@set -o pipefail; $(UNIT_BIN) --jobs 2 2>&1 | tee $(BUILD)/tests/unit.log
	@set -o pipefail; $(DRIVER_TEST_BIN) --jobs 2 2>&1 | tee -a $(BUILD)/tests/unit.log
	@! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" $(BUILD)/tests/unit.log

integration: all $(PROBE_BIN) $(CORE_BIN)
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) -m pytest -q tests/integration

# The same suite in parts for make test: the kernel-core tests start no JVM and no cluster
# (protocol, replies, hostile clients, the valgrind soak); the Spark tests run each
# file once: the ones that drive the Spark driver's C (ASAN_SPARK, below) on the sanitized
# build only, the others on the plain build.
CORE_TESTS := test_protocol.py test_hostile.py test_security.py test_jupyter_kernel_test.py \
              test_core_seam.py test_frames.py test_status_escaping.py test_debugger.py test_ipykernel_parity.py \
              test_install.py test_soak.py
# The set-up tests (test_setup.py: make run's and make test's installs into fresh places, a
# minute mostly spent waiting on pip and npm, with no timing check) are a stage part of their
# own (setup-tests), not a kernel-core one: make test runs them beside the chart checks and
# the fuzzers, whose budget is wall time, and so make test-all runs them once.
SETUP_TESTS := test_setup.py
integration-core: all $(CORE_BIN)
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) -m pytest -q $(CORE_TESTS:%=tests/integration/%)
# LONG selects the tests marked `long` (tests/integration/conftest.py: slow variants of what
# the others check); `make test` leaves them out, `make test-all` runs them (LONG=).
LONG ?= -m "not long"
integration-spark: all $(PROBE_BIN)
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) -m pytest -q $(LONG) tests/integration \
	    $(CORE_TESTS:%=--ignore=tests/integration/%) $(SETUP_TESTS:%=--ignore=tests/integration/%) \
	    $(ASAN_SPARK:%=--ignore=tests/integration/%)
# The kernel-core stage of make test: the sanitized kernel under the core tests that reach
# C (ASAN_CORE, below), then on the plain build only the core tests ASan cannot or need not
# run (ipykernel parity, install, the valgrind soak). Running ASAN_CORE on the plain
# build too found nothing the sanitized run missed and cost 5 minutes: make test-all does.
CORE_PLAIN = $(filter-out $(ASAN_CORE),$(CORE_TESTS))
integration-core-plain: all $(CORE_BIN)
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) -m pytest -q $(CORE_PLAIN:%=tests/integration/%)
setup-tests:
	$(PYTHON) -m pytest -q $(SETUP_TESTS:%=tests/integration/%)
core-ci: asan-core integration-core-plain

# The driver suite against PySpark 3.5 (the original cluster's images), in its own venv:
# the kernel's executor, the cluster the tests start and the clients all run 3.5.
COMPAT_VENV  ?= .venv-compat
# What depends on PySpark's version: the executor's session code (executor_spark), the
# notebooks' own sessions where PySpark 3.5 and 4 take different paths (builders, old-style
# SparkContext calls, helper modules that build sessions, a builder whose settings differ
# from the running session's, an interrupt while one starts: the rest of the wild corpus
# of issue 15 goes through the same entry points and runs with PySpark 4 in the Spark
# stage) and the elastic share's calls into Spark's scheduler (issue 19). The driver suite,
# the WAITING report, the rest of sharing and the JVM archive are mostly the C side's and
# the JVM's (`make test-compat-all` runs that longer list).
WILD         := tests/integration/test_wild_notebooks.py
# (launch_settings, the relaunch of a JVM with a notebook's launch settings, passed on 3.5
# when it came and runs in `make test-compat-all`: out of make test's stage for its time;
# so do helpers_out_of_sight, whose sessions start through the builders four_cells and
# old_style_contexts take, and builder_settings, whose job tags test_executor_spark checks
# on 3.5 too. The executor suite's taken-port cases are Spark's own port retries under the
# kernel's fixed ports, the same in both versions: 30 s, left to test-compat-all.)
COMPAT_WILD  := four_cells old_style_contexts
COMPAT_TESTS := tests/integration/test_executor_spark.py \
                --deselect 'tests/integration/test_executor_spark.py::test_taken_port_falls_back_to_the_next_candidate' \
                $(foreach n,$(COMPAT_WILD),'$(WILD)::test_same_as_plain_pyspark[$(n)]') \
                $(WILD)::test_session_interrupted_while_it_starts \
                $(WILD)::test_job_of_a_session_the_notebook_built_interrupted \
                tests/integration/test_sharing.py::test_elastic_share_grows_alone_and_gives_back_at_task_boundaries
COMPAT_ALL   := tests/integration/test_spark_driver.py tests/integration/test_spark_cases.py \
                tests/integration/test_executor_spark.py tests/integration/test_cds.py $(WILD)

$(COMPAT_VENV)/.sparkernel-deps: requirements-compat.txt
	@VENV=$(VENV) COMPAT_VENV=$(COMPAT_VENV) bash tests/support/deps.sh test

test-compat: all $(PROBE_BIN) $(COMPAT_VENV)/.sparkernel-deps
	@mkdir -p $(BUILD)/compat/share/jupyter/kernels/sparkernel
	$(COMPAT_VENV)/bin/python kernelspec/render.py --bin $(CURDIR)/$(BIN) \
	    --python $(CURDIR)/$(COMPAT_VENV)/bin/python --pythonpath $(PYDIR) \
	    --out $(BUILD)/compat/share/jupyter/kernels/sparkernel
	$(COMPAT_VENV)/bin/python -c 'import pyspark; assert pyspark.__version__.startswith("3.5."), pyspark.__version__'
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/compat/share/jupyter $(COMPAT_VENV)/bin/python -m pytest -q \
	    $(COMPAT_TESTS)
test-compat-all:
	$(MAKE) --no-print-directory test-compat COMPAT_TESTS='$(COMPAT_ALL)'

# The Helm chart: lint, render with several value sets, validate offline (tests/charts).
charts:
	PYTHON=$(PYTHON) bash tests/charts/run.sh

# The whole suite, what CI runs (.ci/run) and README.md's second command: installs what is
# missing (deps), checks the machine (preflight), then runs the stages below in a sub-make
# (so that the build sees what deps installed). Each stage prints its wall time, and the list
# of them ends up in $(BUILD)/stages.txt. Stages that share no cluster and fit the two cores
# run side by side (-j2): the two unit suites; the chart checks beside the fuzzers (each
# fuzzer is bounded in wall time, so it costs the same alone or not). The integration
# suites run one at a time: their timing checks (the WAITING report, sharing turns,
# interrupts within 1 s, processes gone within 25 s of a shutdown) failed in CI beside other
# work on two cores, the Spark ones and the kernel-core ones alike; every Spark test file
# runs once, on one of the two builds.
test: deps
	@PYTHON=$(PYTHON) bash tests/support/preflight.sh test
	@$(MAKE) --no-print-directory test-stages

STAGE := bash tests/support/stage.sh $(BUILD)/stages.txt
# Each fuzzer's time in make test: a regression check of the parsers beside the chart tests
# (which on a fresh machine build helm, 100 s of two cores); `make fuzz` runs each for
# FUZZ_SECONDS (60), and longer campaigns set it (make fuzz FUZZ_SECONDS=600).
CI_FUZZ_SECONDS ?= 15
PAR   := $(MAKE) --no-print-directory -j2 --output-sync=target
test-stages:
	@mkdir -p $(BUILD) && rm -f $(BUILD)/stages.txt
	@$(STAGE) build $(MAKE) --no-print-directory -j2 all $(PROBE_BIN) $(CORE_BIN) $(UNIT_BIN) \
	    $(DRIVER_TEST_BIN) asan-build \
	    $(FUZZ_RUN:%=$(BUILD)/fuzz/fuzz_%)
	@$(STAGE) "unit, plain | ASan" $(PAR) unit asan-unit
	@$(STAGE) "charts | fuzz | set-up" $(MAKE) --no-print-directory -j3 --output-sync=target \
	    charts fuzz setup-tests FUZZ_SECONDS=$(CI_FUZZ_SECONDS)
	@$(STAGE) "integration, Spark" $(MAKE) --no-print-directory integration-spark
	@$(STAGE) "ASan Spark driver" $(MAKE) --no-print-directory asan-spark
	@$(STAGE) "PySpark 3.5" $(MAKE) --no-print-directory test-compat
	@$(STAGE) "kernel core, ASan then plain-only" $(MAKE) --no-print-directory core-ci
	@echo "== stage times"; cat $(BUILD)/stages.txt

# Everything, including what `make test` leaves out: the whole integration suite on the ASan
# build too, and every Spark suite against PySpark 3.5 (test-compat-all).
test-all: deps
	@PYTHON=$(PYTHON) bash tests/support/preflight.sh test
	@$(MAKE) --no-print-directory LONG= test-stages integration-core asan test-compat-all

ASAN_MAKE := $(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all"
ASAN_RUN  := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SPARKERNEL_SANITIZED=1 SPARKERNEL_BUILD_DIR=build-asan JUPYTER_PATH=$(CURDIR)/build-asan/share/jupyter \
	$(PYTHON) -m pytest -q

asan-build:
	+$(ASAN_MAKE) all build-asan/bin/master_probe build-asan/bin/core_kernel build-asan/tests/unit_tests \
	    build-asan/tests/driver_tests
asan-unit: asan-build
	+$(ASAN_MAKE) unit

# The sanitized kernel under the integration tests that drive C the sanitizers do not
# already see: the unit tests (ASan) cover wire, auth, connection, message, history, utf8,
# frame, settings, sharing, progress and the master parser, and the fuzzers (ASan) the
# parsers of outside bytes. Left for these: the loop, dispatch, iopub, heartbeat, execution
# queue, executor supervision and frames (kernel core, no JVM: protocol, hostile, security,
# jupyter_kernel_test, frames, status_escaping), and the Spark driver's session, HTTP, ports
# and master code with a real cluster (spark_driver, faults, master_live).
# Left to the plain build: the notebooks end to end, JupyterLab, the JVM archive, the
# cluster tool, sharing, two hosts, install/set-up (no C path the ones above miss; minutes
# each) and the valgrind soak (valgrind and ASan do not mix). `make asan` runs them all.
ASAN_CORE  := test_protocol.py test_hostile.py test_security.py test_jupyter_kernel_test.py \
              test_core_seam.py test_frames.py test_status_escaping.py test_debugger.py
ASAN_SPARK := test_spark_driver.py test_faults.py test_master_live.py
asan-core: asan-build
	$(ASAN_RUN) $(ASAN_CORE:%=tests/integration/%)
asan-spark: asan-build
	$(ASAN_RUN) $(LONG) $(ASAN_SPARK:%=tests/integration/%)

ASAN_SKIP := --ignore=tests/integration/test_notebooks.py --ignore=tests/integration/test_lab.py \
	     --ignore=tests/integration/test_cds.py --ignore=tests/integration/test_soak.py \
	     --ignore=tests/integration/test_wild_notebooks.py
asan: asan-build asan-unit
	$(ASAN_RUN) tests/integration $(ASAN_SKIP)

# Every benchmark: the kernel alone, Spark, three notebooks sharing a worker, the notebooks.
bench: bench-kernel bench-spark bench-sharing bench-notebooks bench-wild bench-elastic

bench-kernel: all
	SPARKERNEL_WARM=false JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_kernel.py \
	    --out tests/bench/results.md

# Spark figures against ipykernel + PySpark on a local standalone cluster (issue 4's targets).
bench-spark: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_spark.py \
	    --out tests/bench/results-spark.md

# Three notebooks sharing one 2-core worker (issue 8's benchmark).
bench-sharing: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_sharing.py \
	    --out tests/bench/results-sharing.md

# The wild corpus' four-cell and one-builder notebooks, unchanged for both kernels (issue 15's).
bench-wild: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_wild.py \
	    --out tests/bench/results-wild.md

# A notebook alone on the cluster: a multi-job cell and a CPU-bound cell (issue 19's).
bench-elastic: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_elastic.py \
	    --out tests/bench/results-elastic.md

# The example notebooks end to end with nbconvert, against ipykernel + PySpark (issue 5's).
bench-notebooks: all
	JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/bench/bench_notebooks.py \
	    --out tests/bench/results-notebooks.md

# 10,000 mixed requests, every reply checked (tests/soak/soak.py): the kernel's RSS after 100
# and after 10,000 (within 10%), the same with store_history=False (the history ring's
# share), then under valgrind memcheck (no definite or indirect leak, ERROR SUMMARY 0).
# About 5 minutes; CI runs a smaller one (tests/integration/test_soak.py).
soak: all
	SPARKERNEL_WARM=false JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter $(PYTHON) tests/soak/soak.py \
	    --requests 10000 --out tests/soak/results.md

# The main job: install what is missing, check the machine (Java 17+, memory, the cluster's
# ports), then build and run. The build runs in a sub-make so that it sees what deps installed.
run: deps-run
	@PYTHON=$(PYTHON) CLUSTER_ARGS="$(CLUSTER_ARGS)" bash tests/support/preflight.sh run
	@$(MAKE) --no-print-directory main-job

main-job: all
	PYTHON=$(PYTHON) JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter CLUSTER_ARGS="$(CLUSTER_ARGS)" \
	    ./tests/support/run_main_job.sh

# JupyterLab on 127.0.0.1 with the kernel and notebooks/, on the local cluster (out/cluster),
# which stops when JupyterLab does. LAB_ARGS go to `jupyter lab` (e.g. --port=9999).
LAB_ARGS ?=
lab: all
	PYTHON=$(PYTHON) JUPYTER_PATH=$(CURDIR)/$(BUILD)/share/jupyter ./tests/support/lab.sh $(LAB_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sparkernel/python/sparkernel_executor \
	    $(DESTDIR)$(PREFIX)/share/jupyter/kernels/sparkernel
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sparkernel
	install -m 644 driver/python/sparkernel_executor/*.py \
	    $(DESTDIR)$(PREFIX)/share/sparkernel/python/sparkernel_executor/
	$(PYTHON) kernelspec/render.py --bin $(PREFIX)/bin/sparkernel \
	    --python $${SPARKERNEL_INSTALL_PYTHON:-$(PYTHON)} \
	    --pythonpath $(PREFIX)/share/sparkernel/python \
	    --out $(DESTDIR)$(PREFIX)/share/jupyter/kernels/sparkernel

format:
	clang-format -i $(wildcard kernel/*.[ch] driver/*.[ch] tests/unit/*.c tests/driver/*.c tests/fuzz/*.c tests/support/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard kernel/*.[ch] driver/*.[ch] tests/unit/*.c tests/driver/*.c tests/fuzz/*.c tests/support/*.c)

# libFuzzer harnesses (clang), one per parser of outside bytes (tests/fuzz/fuzz_<name>.c), each
# run for FUZZ_SECONDS under ASan and UBSan (LeakSanitizer on); a crash, leak, UB report or
# input slower than FUZZ_TIMEOUT seconds fails the target. FUZZ_JOBS harnesses run at a time,
# each logging to $(BUILD)/fuzz/<name>.log. Each links only the sources it needs, compiled
# directly. make fuzz FUZZ_RUN="wire frame" runs a subset.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_NAMES   := progress wire connection frame master magics
FUZZ_RUN     ?= $(FUZZ_NAMES)
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -Wall -Wextra -Werror -Wno-unused-parameter

FUZZ_SRC_progress   := driver/progress.c driver/jfield.c driver/render.c kernel/log.c
FUZZ_SRC_wire       := kernel/wire.c kernel/auth.c
FUZZ_SRC_connection := kernel/connection.c
FUZZ_SRC_frame      := kernel/frame.c
FUZZ_SRC_master     := driver/master.c driver/jfield.c driver/render.c driver/http.c driver/curl_lazy.c kernel/log.c kernel/utf8.c
FUZZ_SRC_magics     := driver/magics_parse.c driver/settings.c kernel/log.c kernel/redact.c
FUZZ_PKGS_progress   := jansson
FUZZ_PKGS_wire       := jansson libzmq libsodium
FUZZ_PKGS_connection := jansson
FUZZ_PKGS_frame      := jansson
FUZZ_PKGS_master     := jansson libcurl
FUZZ_PKGS_magics     := jansson
# libcurl is loaded with dlopen (driver/curl_lazy.c): its headers only, never its library.
FUZZ_LIBS_master     := -ldl

define FUZZ_RULE
$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $$(wildcard kernel/*.h driver/*.h)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) $$(shell pkg-config --cflags $(FUZZ_PKGS_$(1))) -o $$@ \
	    tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) \
	    $$(shell pkg-config --libs $(filter-out libcurl,$(FUZZ_PKGS_$(1)))) $(FUZZ_LIBS_$(1))
endef
$(foreach f,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(f))))

# New inputs go to $(BUILD)/fuzz/corpus-<name>; the seeds in tests/fuzz/corpus/<name>/ stay as
# they are (tests/fuzz/make_seeds.py writes them). Every harness runs even after one fails;
# crashing inputs are kept as $(BUILD)/fuzz/<name>-crash-*.
FUZZ_JOBS ?= 2
fuzz: $(FUZZ_RUN:%=$(BUILD)/fuzz/fuzz_%)
	@rm -f $(BUILD)/fuzz/failed
	@printf '%s\n' $(FUZZ_RUN) | xargs -P $(FUZZ_JOBS) -I{} bash -c '\
	    mkdir -p $(BUILD)/fuzz/corpus-{}; \
	    $(BUILD)/fuzz/fuzz_{} -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
	        -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/{}- \
	        $(BUILD)/fuzz/corpus-{} tests/fuzz/corpus/{} >$(BUILD)/fuzz/{}.log 2>&1; rc=$$?; \
	    echo "fuzz_{}: $(FUZZ_SECONDS) s, $$(grep -m1 -o "stat::number_of_executed_units: *[0-9]*" \
	        $(BUILD)/fuzz/{}.log | grep -o "[0-9]*$$") runs, exit $$rc"; \
	    if [ $$rc != 0 ]; then tail -n 40 $(BUILD)/fuzz/{}.log; echo {} >>$(BUILD)/fuzz/failed; fi'
	@if [ -s $(BUILD)/fuzz/failed ]; then \
	    echo "fuzz: failed: $$(tr '\n' ' ' <$(BUILD)/fuzz/failed)(inputs and logs in $(BUILD)/fuzz/)"; exit 1; fi

# The local standalone cluster the main job and the tests use (tests/support/cluster.py).
CLUSTER_ARGS ?=
cluster-start:
	$(PYTHON) tests/support/cluster.py start $(CLUSTER_ARGS)
cluster-stop:
	$(PYTHON) tests/support/cluster.py stop $(CLUSTER_ARGS)

clean:
	rm -rf build build-asan

# The chart's two images, built on this machine with podman (charts/images/build.sh, which
# first sets podman up: charts/images/setup-podman.sh). IMAGES_BASE=auto takes the published
# Temurin base when it can be pulled, else a Debian 12 base made here with debootstrap
# (charts/images/make-base.sh); temurin or local forces one. Not part of `make test`.
IMAGES_BASE ?= auto
.PHONY: images test-containers
images:
	bash charts/images/build.sh --base $(IMAGES_BASE)

# The chart's pods as podman containers on one network (tests/containers/run.sh): master, two
# workers and the edgenode from the chart's rendered values, notebooks run through the
# edgenode's Jupyter server from this host, and the Spark UI link of a cell opened in headless
# Chromium (deps: the test profile, which installs Chromium and the lab driver's npm
# packages). Builds the images first. Not part of `make test`.
test-containers: images deps
	PYTHON=$(PYTHON) bash tests/containers/run.sh

# The chart on a real single-node Kubernetes built on this machine (tests/k8s/run.sh):
# kube-* and CoreDNS built from their Go modules, etcd, containerd, runc and the CNI plugins
# from Debian; the images built (podman) and loaded into containerd; helm install, test,
# upgrade (scale out, scale up) and uninstall; the cluster stopped at the end. Root only;
# what it builds is cached in /var/cache/sparkernel-k8s. Not part of `make test`.
.PHONY: test-k8s
test-k8s:
	bash tests/k8s/run.sh
