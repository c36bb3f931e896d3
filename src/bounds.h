/*
 * Time with its error bound (uclock_now_bounds()): the arithmetic, the
 * latch its figures are published through, and the sources that give
 * them.  bounds.c says what the bound is made of.
 */
#ifndef UCLOCK_BOUNDS_H
#define UCLOCK_BOUNDS_H

#include <stdint.h>

#include "uclock.h"

#define UCLOCK__BOUNDS_DRIFT_PPB 15000       /* default: 15 ppm, ClockBound's */
#define UCLOCK__BOUNDS_KERNEL_PPB 500000     /* the kernel's own: maxerror grows
						500 us a second */
#define UCLOCK__BOUNDS_READ_NS 100           /* a reading against the kernel's,
						as uclock verify holds it */
#define UCLOCK__BOUNDS_REFRESH_NS 1000000000LL /* sources read again after this */

/* What a source said just now. */
struct uclock__bounds_reading {
	int source;          /* enum uclock_bounds_source */
	int status;          /* SYNCHRONIZED, FREE_RUNNING (no answer, or the
				service lost its sync) or UNKNOWN */
	int updated;         /* the service updated since the last reading */
	int64_t as_of_ns;    /* REALTIME at which error_ns held */
	int64_t error_ns;
	uint32_t drift_ppb;  /* the growth of error_ns after as_of_ns */
};

/* The interval at 'now' (REALTIME ns); 'disruptions' and the VM clock's
 * marker (vm_ok: it could be read) are the live ones. */
void uclock__bounds_at(const struct uclock__bounds_copy *c, int64_t now,
		       uint64_t disruptions, int vm_ok, uint64_t vm_marker,
		       struct uclock_bounds *b);

/*
 * The next figures from the previous ones and a reading at 'now'.  The
 * bound never shrinks without new information: unless the service
 * updated (or another source took over), the new bound is at least the
 * previous one grown to the reading's time.  A disruption stays visible
 * (the count recorded is the one of the service's last update) until the
 * service updates again.
 */
void uclock__bounds_next(const struct uclock__bounds_copy *prev,
			 const struct uclock__bounds_reading *r, int64_t now,
			 uint64_t disruptions, int vm_ok, uint64_t vm_marker,
			 int64_t uclock_error_ns, struct uclock__bounds_copy *next);

/* The latch: any number of readers, one writer at a time. */
void uclock__bounds_load(const struct uclock__bounds *bs, struct uclock__bounds_copy *out);
void uclock__bounds_store(struct uclock__bounds *bs, const struct uclock__bounds_copy *c);

/* The kernel's NTP state as a reading; 'state' keeps what it said last
 * (zeroed before the first reading), to tell when the service wrote it. */
struct uclock__adjtimex_state {
	int have;
	int status;
	long maxerror_us, esterror_us;
};
void uclock__bounds_adjtimex(struct uclock__adjtimex_state *state, int64_t now,
			     uint32_t drift_ppb, struct uclock__bounds_reading *r);
/* The same from given adjtimex() results ('ret' its return value). */
void uclock__bounds_from_timex(struct uclock__adjtimex_state *state, int ret,
			       int status, long maxerror_us, long esterror_us,
			       int64_t now, uint32_t drift_ppb,
			       struct uclock__bounds_reading *r);

/* chronyd's tracking report as a reading: its bound |system time offset|
 * + root dispersion + root delay / 2 at its last clock update (ref time);
 * *ref_seen keeps the last ref time seen, to tell an update. */
struct uclock_chrony_tracking;
void uclock__bounds_from_chrony(const struct uclock_chrony_tracking *t, int64_t *ref_seen,
				uint32_t drift_ppb, struct uclock__bounds_reading *r);

/* UCLOCK_MAX_DRIFT_PPM, or the default; 0 and 'why' set for a bad value. */
uint32_t uclock__bounds_drift_env(char *why, size_t size);
/* A drift rate in ppm as text ("15", "2.5"): ppb, or 0 if not one. */
uint32_t uclock__bounds_parse_ppm(const char *text);

/* uclock's own error from its steering error (see bounds.c). */
int64_t uclock__bounds_uclock_error(int64_t steering_err_ns);
/* The VM clock's disruption marker: 1 and *marker if there is a device
 * this process has mapped, else 0. */
int uclock__bounds_vm_marker(uint64_t *marker);
/* The same for the figures' writer, who maps the device the first time
 * ($UCLOCK_VMCLOCK, else /dev/vmclock0); *moved: the marker changed since
 * its last call.  One caller at a time. */
int uclock__bounds_vm_poll(uint64_t *marker, int *moved);
/* In a child: a refresh another thread was doing is not going on. */
void uclock__bounds_after_fork(void);

const char *uclock__bounds_status_name(int status);
const char *uclock__bounds_source_name(int source);

#endif
