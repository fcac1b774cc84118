/* SPDX-License-Identifier: MIT */
/*
 * ms_ram: to be written (issue #13); see src/ram-impl.h.
 */
#include "ram-impl.h"
