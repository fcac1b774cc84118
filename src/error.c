/* SPDX-License-Identifier: MIT */
/*
 * Names of the error codes migstream returns, from one table, and the
 * sticky first error every object of the library keeps (ms__error).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/*
 * Every code a migstream function can return, with its description: the
 * library's own codes, then the POSIX errnos a transport (a descriptor or
 * a custom sink) can pass through.  Pairs that are the same number on some
 * systems (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP, EDEADLK/EDEADLOCK) have
 * one entry only, so that the switch never has a duplicate case.
 */
#define MS__ERRNO_MAP(XX)                                                      \
	XX(EINVAL, "invalid argument")                                         \
	XX(ENOMEM, "out of memory")                                            \
	XX(EIO, "input/output error")                                          \
	XX(ENOSPC, "no space left in the sink")                                \
	XX(EBADMSG, "malformed stream")                                        \
	XX(EPROTO, "protocol error")                                           \
	XX(ENOTSUP, "not supported")                                           \
	XX(EOVERFLOW, "value too large")                                       \
	XX(ENODATA, "end of stream")                                           \
	XX(EAGAIN, "more data needed")                                         \
	XX(EPIPE, "peer closed the connection")                                \
	XX(ECONNRESET, "connection reset by peer")                             \
	XX(ETIMEDOUT, "timed out")                                             \
	XX(EBADF, "bad file descriptor")                                       \
	XX(ERANGE, "value out of range")                                       \
	XX(ENOENT, "no such section or entry")                                 \
	XX(EEXIST, "already registered")                                       \
	XX(ECANCELED, "operation cancelled")                                   \
	XX(EBUSY, "busy")                                                      \
	XX(EFBIG, "too large")                                                 \
	XX(EILSEQ, "checksum mismatch")                                        \
	XX(EPERM, "operation not permitted")                                   \
	XX(EACCES, "permission denied")                                        \
	XX(ECONNABORTED, "connection aborted")                                 \
	XX(ECONNREFUSED, "connection refused")                                 \
	XX(EDESTADDRREQ, "destination address required")                       \
	XX(EDQUOT, "disk quota exceeded")                                      \
	XX(EFAULT, "bad address")                                              \
	XX(EHOSTUNREACH, "host unreachable")                                   \
	XX(EINTR, "interrupted system call")                                   \
	XX(EISDIR, "is a directory")                                           \
	XX(EMSGSIZE, "message too long")                                       \
	XX(ENETDOWN, "network is down")                                        \
	XX(ENETRESET, "connection reset by network")                           \
	XX(ENETUNREACH, "network unreachable")                                 \
	XX(ENOBUFS, "no buffer space available")                               \
	XX(ENODEV, "no such device")                                           \
	XX(ENOTCONN, "socket not connected")                                   \
	XX(ENOTSOCK, "not a socket")                                           \
	XX(ENOTTY, "inappropriate ioctl for device")                           \
	XX(ENXIO, "no such device or address")                                 \
	XX(EROFS, "read-only file system")                                     \
	XX(ESPIPE, "illegal seek")

const char *ms_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	switch (err) {
#define MS__ERRNO_CASE(code, text)                                             \
	case code:                                                             \
		return text;
		MS__ERRNO_MAP(MS__ERRNO_CASE)
#undef MS__ERRNO_CASE
	default:
		return "unknown error";
	}
}

int ms__error_vset(ms__error *e, int err, int fallback, uint64_t offset,
		   long long section_id, const char *idstr, const char *fmt,
		   va_list ap)
{
	size_t n = 0;
	int k;

	if (e->code)
		return e->code;
	e->code = err < 0 ? err : fallback;
	e->offset = offset;
	e->msg[0] = '\0';
	if (offset != MS__NO_OFFSET) {
		k = snprintf(e->msg, sizeof(e->msg),
			     "offset 0x%llx: ", (unsigned long long)offset);
		n = k > 0 && (size_t)k < sizeof(e->msg) ? (size_t)k : 0;
	}
	e->text = (unsigned)n;
	if (section_id != MS__NO_SECTION) {
		k = snprintf(e->msg + n, sizeof(e->msg) - n,
			     "section %lld '%s': ", section_id,
			     idstr ? idstr : "");
		if (k > 0 && (size_t)k < sizeof(e->msg) - n)
			n += (size_t)k;
	}
	if (fmt)
		vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	else
		snprintf(e->msg + n, sizeof(e->msg) - n, "%s",
			 ms_strerror(e->code));
	return e->code;
}

int ms__error_set(ms__error *e, int err, int fallback, uint64_t offset,
		  long long section_id, const char *idstr, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = ms__error_vset(e, err, fallback, offset, section_id, idstr, fmt,
			     ap);
	va_end(ap);
	return ret;
}

int ms__error_take(ms__error *e, const ms__error *from)
{
	if (e->code || !from->code)
		return e->code;
	*e = *from;
	return e->code;
}

int ms__error_misuse(ms__error *e, const char *fmt, ...)
{
	va_list ap;

	if (e->code)
		return -EINVAL;
	e->offset = MS__NO_OFFSET;
	e->text = 0;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *ms__error_text(const ms__error *e)
{
	return e->msg + e->text;
}
