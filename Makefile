# uclock: a user-space vDSO.  `make`, `make test`, `make run`, `make bench`;
# `make help` lists every target and variable.

CC ?= cc
CXX ?= c++
BUILD ?= build
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
# Where libuclock-preload.so goes; compiled into the CLI (uclock run).
PRELOADDIR ?= $(LIBDIR)
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
# The one version: uclock.h's.
VERSION := $(shell sed -n 's/^\#define UCLOCK_VERSION_STRING "\(.*\)"/\1/p' include/uclock.h)
SONAME := libuclock.so.0

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-missing-field-initializers
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) -Iinclude -Isrc
ifeq ($(WERROR),1)
BASE_CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
SAN_LDFLAGS := -fsanitize=$(SANITIZE)
endif
LIB_CFLAGS := $(BASE_CFLAGS) -fPIC -fvisibility=hidden -DUCLOCK_BUILDING
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)
LIBS := -lpthread
# Sanitized shared objects leave the runtime to the executable (clang).
ZDEFS := $(if $(SANITIZE),,-Wl,-z,defs)

LIB_SRC := $(wildcard src/*.c)
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/src/%.o)
SHARED := $(BUILD)/libuclock.so.$(VERSION)
STATIC := $(BUILD)/libuclock.a
CLI := $(BUILD)/uclock
PRELOAD := $(BUILD)/libuclock-preload.so
DAEMON := $(BUILD)/uclockd
CLI_SRC := $(wildcard tools/uclock/*.c)
# The CLI's own diagnostic code, and the project's ELF reader.
CLI_OBJ := $(CLI_SRC:tools/uclock/%.c=$(BUILD)/tools/uclock/%.o) \
	$(BUILD)/tools/uclock/elf_reader.o

TEST_SRC := $(filter-out tests/sim.c tests/check.c,$(wildcard tests/*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_HELPERS := $(BUILD)/tests/sim.o $(BUILD)/tests/check.o
# Programs the test scripts run (not tests themselves).
HELPER_BIN := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(wildcard tests/helpers/*.c)) \
	$(patsubst tests/helpers/lib/%.c,$(BUILD)/tests/helpers/lib%.so,$(wildcard tests/helpers/lib/*.c))

.PHONY: all lib test test-programs run bench bench-shared bench-clocksource bench-timekeeper \
	fuzz cross-aarch64 test-aarch64 test-riscv64 install uninstall clean help print-version \
	FORCE
all: lib $(CLI) $(DAEMON) $(PRELOAD)

help:
	@echo 'Targets:'
	@echo '  make / make all     the library (shared, static), uclock, uclockd, the preload shim'
	@echo '  make run            the uclock report: how clock calls run on this machine'
	@echo '  make test           every test (TESTS="name ..." for some of them)'
	@echo '  make test-aarch64   cross-built for arm64, its tests under qemu-user'
	@echo '  make cross-aarch64  the arm64 build only, in build-aarch64'
	@echo '  make test-riscv64   an architecture without a counter: pass-through'
	@echo '  make bench          cost per call of every method, side by side with the vDSO'
	@echo '  make bench-shared   uclockd: processes reading its page at once'
	@echo '  make bench-clocksource  where the kernel does not read the TSC'
	@echo '  make bench-timekeeper   tails, update cost, first read, a quiet daemon'
	@echo '  make fuzz           the ELF reader under libFuzzer (clang)'
	@echo '  make install        into DESTDIR PREFIX (uninstall: the same, removed)'
	@echo '  make clean          remove every build directory'
	@echo 'Variables:'
	@echo '  CC, CFLAGS, LDFLAGS, BUILD (build directory, default build),'
	@echo '  SANITIZE (address,undefined or thread), WERROR=1, TESTS,'
	@echo '  BENCH_ARGS (options of uclock bench for make bench: --quick...),'
	@echo '  AARCH64_CC, QEMU_AARCH64, AARCH64_SYSROOT (make test-aarch64),'
	@echo '  PREFIX (/usr/local), LIBDIR, INCLUDEDIR, BINDIR, SBINDIR, MANDIR,'
	@echo '  UNITDIR, PRELOADDIR (default LIBDIR), COMPLETIONDIR, DESTDIR'

print-version:
	@echo $(VERSION)

# PRELOADDIR as the CLI was built with: a change (make install with another
# LIBDIR) rebuilds what compiles it in.
$(BUILD)/preloaddir: FORCE
	@mkdir -p $(BUILD)
	@echo '$(PRELOADDIR)' | cmp -s - $@ || echo '$(PRELOADDIR)' > $@
lib: $(SHARED) $(STATIC)

$(BUILD)/src/%.o: src/%.c include/uclock.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(CFLAGS) -c $< -o $@

$(SHARED): $(LIB_OBJ) src/libuclock.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libuclock.map \
		$(ZDEFS) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)
	ln -sf libuclock.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libuclock.so

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tools/uclock/%.o: tools/uclock/%.c tools/uclock/*.h include/uclock.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itools/uclock -Ipreload -c $< -o $@

$(BUILD)/tools/uclock/run.o: $(BUILD)/preloaddir
$(BUILD)/tools/uclock/run.o: ALL_CFLAGS += -DUCLOCK_PRELOADDIR='"$(PRELOADDIR)"'

$(BUILD)/tools/uclock/elf_reader.o: src/elf_reader.c src/elf_reader.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(ALL_CFLAGS) $(CLI_OBJ) -o $@ $(STATIC) $(SAN_LDFLAGS) $(LDFLAGS) $(LIBS) -lm -ldl

# The shim carries its own copy of the library (the program may not link
# it) and exports the C library's clock calls only.
$(BUILD)/preload/uclock_preload.o: preload/uclock_preload.c preload/*.h include/uclock.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(CFLAGS) -Ipreload -c $< -o $@

$(PRELOAD): $(BUILD)/preload/uclock_preload.o $(LIB_OBJ) preload/preload.map
	$(CC) -shared -Wl,--version-script=preload/preload.map $(ZDEFS) $(SAN_LDFLAGS) \
		$(LDFLAGS) -o $@ $(BUILD)/preload/uclock_preload.o $(LIB_OBJ) $(LIBS) -ldl

# The daemon is the shared page's writer: it runs the library's timekeeper.
$(DAEMON): tools/uclockd/uclockd.c $(STATIC) include/uclock.h $(wildcard src/*.h)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(SAN_LDFLAGS) $(LDFLAGS) $(LIBS)

$(BUILD)/tests/%.o: tests/%.c tests/*.h include/uclock.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Tests link the static archive: they reach internal interfaces too.
$(BUILD)/tests/%: tests/%.c $(TEST_HELPERS) $(STATIC) tests/*.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(TEST_HELPERS) $(STATIC) $(SAN_LDFLAGS) \
		$(LDFLAGS) $(LIBS) -lm

# Sanitizer builds skip the scripts that link new programs against the
# library or load it into a program built without the sanitizer (ffi:
# python3), which would need the sanitizer runtime.
LINKING_SCRIPTS := header install static preload ffi
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(STATIC) include/uclock.h $(wildcard tests/helpers/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(SAN_LDFLAGS) $(LDFLAGS) $(LIBS)

$(BUILD)/tests/helpers/lib%.so: tests/helpers/lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared $< -o $@

# The test programs, built, not run (a cross build runs them elsewhere).
test-programs: all $(TEST_BIN) $(HELPER_BIN)

test: test-programs
	@BUILD=$(BUILD) CC="$(CC)" CXX="$(CXX)" \
		SKIP_SCRIPTS="$(if $(SANITIZE),$(LINKING_SCRIPTS))" \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		sh tests/run.sh $(TESTS)

# arm64: cross-built into build-aarch64, tested under QEMU's user mode (the
# README's "arm64" says what runs there and what cannot).  There the
# counter is CNTVCT_EL0 as QEMU emulates it (from the host's
# gettimeofday(): it steps by a microsecond) and the kernel is the host's,
# so the policy refuses the counter: the counter tests force it
# (UCLOCK_SOURCE=counter), keep updates at every millisecond
# (UCLOCK_INTERVAL_US; emulated system calls are costly enough that the
# timekeeper would stretch the interval to where a microsecond-step
# counter's rate error shows), and allow 10 us around each bracket of
# kernel readings (UCLOCK_TEST_SLACK_NS).  QEMU maps no vDSO: the ELF
# tests read a stand-in built like the arm64 kernel's.
AARCH64_CC ?= aarch64-linux-gnu-gcc
AARCH64_OBJDUMP ?= aarch64-linux-gnu-objdump
AARCH64_SYSROOT ?= /usr/aarch64-linux-gnu
QEMU_AARCH64 ?= qemu-aarch64-static
AARCH64_BUILD := build-aarch64
AARCH64_RUN = BUILD=$(AARCH64_BUILD) EMULATOR="$(QEMU_AARCH64) -L $(AARCH64_SYSROOT)" \
	TEST_TIMEOUT=120 sh tests/run.sh
# The policy (for the machine as it is), the simulator, the ELF reader.
AARCH64_TESTS := trust_policy trust elf fuzz_elf bounds vmclock chrony_proto $(patsubst tests/%.c,%,$(wildcard tests/sim_*.c))
# Against the kernel, the counter forced: brackets, the API, errno, the
# readers across threads, under signals, on stale lines, in fork children
# and time namespaces; the command and the daemon (tests/emulated/).
AARCH64_COUNTER_TESTS := api errno bracket threads stale fork timens cli

$(BUILD)/tests/vdso-arm64.so: tests/emulated/vdso_arm64.c tests/emulated/vdso_arm64.lds
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -nostdlib -Wl,--hash-style=sysv -Wl,-Bsymbolic \
		-Wl,-soname=linux-vdso.so.1 -Wl,-T,tests/emulated/vdso_arm64.lds $< -o $@

cross-aarch64:
	$(MAKE) CC=$(AARCH64_CC) BUILD=$(AARCH64_BUILD) test-programs \
		$(AARCH64_BUILD)/tests/vdso-arm64.so

test-aarch64: cross-aarch64
	@OBJDUMP=$(AARCH64_OBJDUMP) UCLOCK_ELF_IMAGE=$(AARCH64_BUILD)/tests/vdso-arm64.so \
		$(AARCH64_RUN) $(AARCH64_TESTS)
	@UCLOCK_SOURCE=counter UCLOCK_INTERVAL_US=5000 UCLOCK_TEST_SLACK_NS=10000 \
		$(AARCH64_RUN) $(AARCH64_COUNTER_TESTS)

# An architecture uclock has no counter for (riscv64, under QEMU): the plain
# C fallback builds, and every call passes through to the kernel, with the
# kernel's results and errno.
RISCV64_CC ?= riscv64-linux-gnu-gcc
RISCV64_SYSROOT ?= /usr/riscv64-linux-gnu
QEMU_RISCV64 ?= qemu-riscv64-static
RISCV64_BUILD := build-riscv64

test-riscv64:
	$(MAKE) CC=$(RISCV64_CC) BUILD=$(RISCV64_BUILD) test-programs
	@BUILD=$(RISCV64_BUILD) EMULATOR="$(QEMU_RISCV64) -L $(RISCV64_SYSROOT)" TEST_TIMEOUT=120 \
		sh tests/run.sh trust_policy trust api errno bracket

run: $(CLI)
	$(CLI)

# uclock bench is the one measurement engine: BENCH_ARGS are its options
# (--quick, --duration S, --threads N, --json).
bench: all
	$(CLI) bench $(BENCH_ARGS)

# Readers on uclockd's page against in-process readers.
bench-shared: all
	BUILD=$(BUILD) sh bench/shared.sh

# What the timekeeper costs: tails, updates, first read, a quiet daemon.
$(BUILD)/bench-timekeeper: bench/timekeeper.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -O2 $< -o $@ $(STATIC) $(SAN_LDFLAGS) $(LDFLAGS) $(LIBS)

bench-timekeeper: all $(BUILD)/bench-timekeeper
	BUILD=$(BUILD) sh bench/timekeeper.sh

# Where the kernel does not read the TSC: system calls, another clocksource.
bench-clocksource: all
	BUILD=$(BUILD) sh bench/clocksource.sh

# The ELF reader under libFuzzer (clang): FUZZ_SECONDS of fuzzing from the
# dumped vDSO.  The same file is a plain test program in make test.
FUZZ_SECONDS ?= 60
fuzz: $(CLI)
	@mkdir -p $(BUILD)/fuzz/corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -DUCLOCK_LIBFUZZER \
		-Iinclude -Isrc tests/fuzz_elf.c src/elf_reader.c -o $(BUILD)/fuzz/elf_fuzz
	$(CLI) vdso --dump $(BUILD)/fuzz/corpus/vdso.so
	$(BUILD)/fuzz/elf_fuzz -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus

# The library's pages: one per function (the others .so links to them),
# and the overview.
MAN3 := $(wildcard man/*.3)
MAN7 := $(wildcard man/*.7)

install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(LIBDIR)/cmake/uclock $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PRELOADDIR) \
		$(DESTDIR)$(COMPLETIONDIR)
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 755 $(DAEMON) $(DESTDIR)$(SBINDIR)/
	install -m 644 man/uclock.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/
	install -m 644 man/uclockd.8 $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|@SBINDIR@|$(SBINDIR)|' packaging/uclockd.service.in \
		> $(DESTDIR)$(UNITDIR)/uclockd.service
	install -m 644 include/uclock.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(PRELOAD) $(DESTDIR)$(PRELOADDIR)/
	install -m 644 packaging/uclock.bash-completion $(DESTDIR)$(COMPLETIONDIR)/uclock
	ln -sf libuclock.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libuclock.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		packaging/uclock.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/uclock.pc
	sed -e 's|@VERSION@|$(VERSION)|' packaging/uclockConfigVersion.cmake.in \
		> $(DESTDIR)$(LIBDIR)/cmake/uclock/uclockConfigVersion.cmake
	install -m 644 packaging/uclockConfig.cmake \
		$(DESTDIR)$(LIBDIR)/cmake/uclock/uclockConfig.cmake

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/uclock.h $(DESTDIR)$(LIBDIR)/libuclock.* \
		$(DESTDIR)$(LIBDIR)/pkgconfig/uclock.pc $(DESTDIR)$(BINDIR)/uclock \
		$(DESTDIR)$(PRELOADDIR)/libuclock-preload.so $(DESTDIR)$(COMPLETIONDIR)/uclock \
		$(DESTDIR)$(SBINDIR)/uclockd $(DESTDIR)$(MANDIR)/man1/uclock.1 \
		$(DESTDIR)$(MANDIR)/man8/uclockd.8 $(DESTDIR)$(UNITDIR)/uclockd.service
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man3/%,$(MAN3)) \
		$(patsubst man/%,$(DESTDIR)$(MANDIR)/man7/%,$(MAN7))
	rm -rf $(DESTDIR)$(LIBDIR)/cmake/uclock

clean:
	rm -rf $(BUILD) build-*
