/* SPDX-License-Identifier: MIT */
/*
 * migstream: streams for virtual machine and device state migration.
 *
 * The umbrella header: include this one.  Each module header can also be
 * included on its own.
 */
#ifndef MIGSTREAM_MIGSTREAM_H
#define MIGSTREAM_MIGSTREAM_H

#include <migstream/version.h>
#include <migstream/stream.h>
#include <migstream/section.h>
#include <migstream/driver.h>
#include <migstream/vfio_user.h>
#include <migstream/qemu_ram.h>
#include <migstream/ram.h>

#endif /* MIGSTREAM_MIGSTREAM_H */
