/* SPDX-License-Identifier: MIT */
/*
 * Names of the error codes migstream returns, from one table.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>

#include "migstream/stream.h"

/* Every code a migstream function can return, with its description. */
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
	XX(EPERM, "operation not permitted")

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
