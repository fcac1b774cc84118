/* SPDX-License-Identifier: MIT */
/*
 * ms_ram's parallel channels: placeholders until they are written (issue
 * #13); see src/ram-impl.h.  Every entry refuses with -ENOTSUP.
 */
#include <errno.h>

#include "ram-impl.h"

static int not_built(ms_stream *main)
{
	return ms_stream_set_error(main, -ENOTSUP,
				   "RAM channels: not built in this library");
}

int ms__ram_chan_save_start(ms_ram *ram, ms_stream *main)
{
	(void)ram;
	return not_built(main);
}

int ms__ram_chan_save_round(ms_ram *ram, bool final, ms_stream *main)
{
	(void)ram;
	(void) final;
	return not_built(main);
}

void ms__ram_chan_stop(ms_ram *ram, bool abort)
{
	(void)ram;
	(void)abort;
}

int ms__ram_chan_load_start(ms_ram *ram, uint64_t n, ms_stream *main)
{
	(void)ram;
	(void)n;
	return not_built(main);
}

int ms__ram_chan_load_sync(ms_ram *ram, uint64_t round, bool final,
			   ms_stream *main)
{
	(void)ram;
	(void)round;
	(void) final;
	return not_built(main);
}
