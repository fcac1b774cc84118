/* SPDX-License-Identifier: MIT */
/*
 * ms_ram's parallel channels (see src/ram-impl.h for the wire layout).
 *
 * Each channel is a stream of its own on a borrowed descriptor, written
 * or read by a thread of its own.  One mutex guards every channel's state
 * (rounds requested, done and applied, failures); two condition variables
 * carry the news: @work from the migration thread to the channel threads
 * (a round to send, or quit), @done from the channel threads to the
 * migration thread and to each other (a round sent or applied, a failure,
 * an end).  Nothing is polled, and no 64-bit atomics are needed.
 *
 * Source: the migration thread asks every thread for round k and waits
 * until all have sent and flushed it (or one failed); only then does it
 * write the main stream's sync point and, later, ask for round k + 1.
 *
 * Destination: each thread reads its rounds in order and, after applying
 * round k, waits until every channel has applied round k before it applies
 * any page of round k + 1: a page resent in round k + 1 on one channel
 * cannot be overwritten by its round-k copy arriving late on another.
 *
 * Why the barrier cannot deadlock with a source blocked in write(2): a
 * destination thread waits at barrier k only for channels that have not
 * applied round k yet, and every byte of round k of every channel was
 * written (write(2) returned, the data sits in the kernel) before the
 * source started round k + 1, since the source's migration thread waits
 * for all channels to flush round k before it asks for k + 1.  So the
 * channels still behind need nothing the source has not sent already; a
 * source thread blocked writing round k + 1 into a full socket is only
 * waiting for a destination thread that will read it once the barrier
 * opens.  A failed thread wakes every waiter and shuts the descriptors
 * down, so that peers blocked on the other side fail instead of waiting.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "migstream/qemu_ram.h"
#include "migstream/section.h"
#include "ram-impl.h"

/* What a channel's thread is doing. */
enum chan_state {
	CH_RUNNING = 0, /* working or waiting */
	CH_FAILED,	/* stopped with @err */
	CH_DONE		/* source: final round sent; dest: EOF read */
};

/**
 * struct chan - One channel.
 * @idx: its number.
 * @fd: its descriptor (borrowed).
 * @s: the fd stream over @fd.
 * @w: source: the writer on @s.
 * @r: destination: the reader on @s.
 * @th: its thread, started if @have_th.
 * @have_th: @th was created (and not joined yet).
 * @owner: the channels it belongs to.
 * @enc: source: its page encoder.
 * @dec: destination: its page decoder (across the sections).
 * @section_id: destination: the section id of its START.
 * @round: source: the last round sent; destination: the last applied.
 * @started: its START was written or read.
 * @ended: destination: its last section was an END.
 * @state: see enum chan_state.
 * @err: its failure, with its offset.
 */
struct chan {
	unsigned idx;
	int fd;
	ms_stream *s;
	ms_writer *w;
	ms_reader *r;
	pthread_t th;
	bool have_th;
	struct ms__ram_chan *owner;
	struct ms__ram_enc enc;
	struct ms__ram_dec dec;
	uint32_t section_id;
	uint64_t round;
	bool started;
	bool ended;
	enum chan_state state;
	ms__error err;
};

/**
 * struct ms__ram_chan - The running channels of one save or load.
 * @ram: their ms_ram.
 * @n: the number of channels.
 * @source: a save (true) or a load.
 * @mu: guards every field below and each channel's @round, @started,
 *      @ended, @state and @err.
 * @work: signalled when @want or @quit change.
 * @done: signalled when a channel's @round or @state changes.
 * @want: source: the round the threads are asked for.
 * @final: source: @want is the last round.
 * @quit: the threads must stop.
 * @first_fail: the channel that failed first, or -1.
 * @joined: load: the final sync joined the threads (@result its verdict).
 * @result: see @joined.
 * @c: the channels, @n of them.
 */
struct ms__ram_chan {
	ms_ram *ram;
	unsigned n;
	bool source;
	pthread_mutex_t mu;
	pthread_cond_t work;
	pthread_cond_t done;
	uint64_t want;
	bool final;
	bool quit;
	int first_fail;
	bool joined;
	int result;
	struct chan c[];
};

static const ms_allocator *chan_alloc(const ms_ram *ram)
{
	return ram->have_alloc ? &ram->alloc : NULL;
}

/* Shut a descriptor down (a socket; anything else is left alone). */
static void chan_shutdown(int fd, int how)
{
	(void)shutdown(fd, how);
}

/* Shut every descriptor down, so that no peer or thread stays blocked. */
static void chans_shutdown_all(struct ms__ram_chan *ch)
{
	for (unsigned i = 0; i < ch->n; i++)
		chan_shutdown(ch->c[i].fd, SHUT_RDWR);
}

/* Mark @c failed with @e (the first failure of a channel wins) and wake
 * everyone. */
static void chan_set_failed(struct chan *c, const ms__error *e)
{
	struct ms__ram_chan *ch = c->owner;

	pthread_mutex_lock(&ch->mu);
	if (c->state == CH_RUNNING) {
		c->err = *e;
		c->state = CH_FAILED;
		if (ch->first_fail < 0)
			ch->first_fail = (int)c->idx;
	}
	pthread_cond_broadcast(&ch->done);
	pthread_cond_broadcast(&ch->work);
	pthread_mutex_unlock(&ch->mu);
	/* Wake the peers: a destination that stops reading would otherwise
	 * leave its source blocked in write(2), and the other channels'
	 * sources with it. */
	if (!ch->source)
		chans_shutdown_all(ch);
}

/* Fail @c with a message that names its own offset (a writer's, reader's
 * or stream's message). */
static void chan_fail_msg(struct chan *c, int err, uint64_t off,
			  const char *msg)
{
	ms__error e;

	memset(&e, 0, sizeof(e));
	ms__error_set(&e, err, -EIO, MS__NO_OFFSET, MS__NO_SECTION, NULL, "%s",
		      msg);
	e.offset = off;
	chan_set_failed(c, &e);
}

static void chan_fail_at(struct chan *c, int err, uint64_t off,
			 const ms_section_hdr *sec, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

/* Fail @c at offset @off of its stream, in section @sec (or NULL). */
static void chan_fail_at(struct chan *c, int err, uint64_t off,
			 const ms_section_hdr *sec, const char *fmt, ...)
{
	ms__error e;
	va_list ap;

	memset(&e, 0, sizeof(e));
	va_start(ap, fmt);
	ms__error_vset(&e, err, -EBADMSG, off,
		       sec ? (long long)sec->section_id : MS__NO_SECTION,
		       sec ? sec->idstr : NULL, fmt, ap);
	va_end(ap);
	chan_set_failed(c, &e);
}

/* Fail the main stream with channel @i's error. */
static int main_fail(ms_stream *main, const struct chan *c)
{
	return ms_stream_set_error(main, c->err.code ? c->err.code : -EIO,
				   "RAM channel %u: %s", c->idx, c->err.msg);
}

/* Allocate the channels and their lock (no streams, no threads yet). */
static int chans_new(ms_ram *ram, unsigned n, bool source, ms_stream *main)
{
	struct ms__ram_chan *ch;
	size_t size = sizeof(*ch) + (size_t)n * sizeof(ch->c[0]);

	ch = ms__malloc(chan_alloc(ram), size);
	if (!ch)
		return ms_stream_set_error(main, -ENOMEM,
					   "RAM channels: out of memory");
	memset(ch, 0, size);
	ch->ram = ram;
	ch->n = n;
	ch->source = source;
	ch->first_fail = -1;
	if (pthread_mutex_init(&ch->mu, NULL)) {
		ms__free(chan_alloc(ram), ch);
		return ms_stream_set_error(main, -ENOMEM,
					   "RAM channels: no mutex");
	}
	if (pthread_cond_init(&ch->work, NULL)) {
		pthread_mutex_destroy(&ch->mu);
		ms__free(chan_alloc(ram), ch);
		return ms_stream_set_error(
			main, -ENOMEM, "RAM channels: no condition variable");
	}
	if (pthread_cond_init(&ch->done, NULL)) {
		pthread_cond_destroy(&ch->work);
		pthread_mutex_destroy(&ch->mu);
		ms__free(chan_alloc(ram), ch);
		return ms_stream_set_error(
			main, -ENOMEM, "RAM channels: no condition variable");
	}
	for (unsigned i = 0; i < n; i++) {
		ch->c[i].idx = i;
		ch->c[i].fd = ram->fds[i];
		ch->c[i].owner = ch;
	}
	ram->ch = ch;
	return 0;
}

/* Create channel @c's stream and its writer or reader. */
static int chan_open(struct chan *c, ms_stream *main)
{
	ms_ram *ram = c->owner->ram;
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION,
			     .allocator = chan_alloc(ram)};
	ms_codec_opts co;
	const ms_codec_opts *cop = NULL;
	bool source = c->owner->source;
	int ret;

	if (ram->have_codec) {
		co = ram->chan_codec;
		if (!co.allocator)
			co.allocator = chan_alloc(ram);
		cop = &co;
	} else if (ram->have_alloc) {
		ms_codec_opts_init(&co);
		if (!source)
			co.profile = MS_PROFILE_AUTO;
		co.allocator = chan_alloc(ram);
		cop = &co;
	}
	ret = ms_stream_new_fd(&c->s, c->fd,
			       source ? MS_STREAM_WRITER : MS_STREAM_READER, 0,
			       &so);
	if (ret)
		return ms_stream_set_error(main, ret,
					   "RAM channel %u: descriptor %d: %s",
					   c->idx, c->fd, ms_strerror(ret));
	ret = source ? ms_writer_new(&c->w, c->s, cop)
		     : ms_reader_new(&c->r, c->s, cop);
	if (ret)
		return ms_stream_set_error(
			main, ret, "RAM channel %u: %s", c->idx,
			ret == -EINVAL ? ms_codec_opts_check(cop, !source)
				       : ms_strerror(ret));
	return 0;
}

/* Free channel @c's reader or writer and stream (joined already). */
static void chan_close(struct chan *c, bool drop)
{
	ms_writer_free(c->w);
	ms_reader_free(c->r);
	c->w = NULL;
	c->r = NULL;
	if (c->s) {
		/* A writer whose channel failed or was stopped must not block
		 * on a last flush to a peer that reads no more. */
		if (drop && ms_stream_mode_of(c->s) == MS_STREAM_WRITER)
			ms__stream_drop(c->s);
		ms_stream_close(c->s);
		c->s = NULL;
	}
}

/* Start every channel's thread; on failure stop those started. */
static int chans_start(ms_ram *ram, void *(*fn)(void *), ms_stream *main)
{
	struct ms__ram_chan *ch = ram->ch;
	int ret;

	for (unsigned i = 0; i < ch->n; i++) {
		ret = chan_open(&ch->c[i], main);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < ch->n; i++) {
		ret = pthread_create(&ch->c[i].th, NULL, fn, &ch->c[i]);
		if (ret)
			return ms_stream_set_error(
				main, -ret, "RAM channel %u: no thread: %s", i,
				strerror(ret));
		ch->c[i].have_th = true;
	}
	return 0;
}

/*
 * Source.
 */

/* Fail source channel @c after @ret from a write to @payload (or 0):
 * the message is the writer's, else the payload's or the fd stream's. */
static void src_fail(struct chan *c, ms_stream *payload, int ret)
{
	if (ms_writer_error(c->w))
		chan_fail_msg(c, ms_writer_error(c->w),
			      ms_writer_error_offset(c->w),
			      ms_writer_errmsg(c->w));
	else if (ms_stream_error(c->s))
		chan_fail_msg(c, ms_stream_error(c->s),
			      ms_stream_error_offset(c->s),
			      ms_stream_errmsg(c->s));
	else if (payload && ms_stream_error(payload))
		chan_fail_msg(c, ms_stream_error(payload),
			      ms_stream_error_offset(payload),
			      ms_stream_errmsg(payload));
	else
		chan_fail_at(c, ret < 0 ? ret : -EIO, ms_stream_tell(c->s),
			     NULL, "%s",
			     ret == -EINVAL ? ms_writer_errmsg(c->w)
					    : ms_strerror(ret));
}

/* Write the header and the START section of source channel @c. */
static int src_start(struct chan *c)
{
	ms_ram *ram = c->owner->ram;
	ms_section_hdr h = {.type = MS_REC_START,
			    .section_id = 0,
			    .instance_id = c->idx,
			    .version_id = MS_QEMU_RAM_VERSION};
	ms_stream *p = NULL;
	int ret;

	memcpy(h.idstr, MS_QEMU_RAM_IDSTR, sizeof(MS_QEMU_RAM_IDSTR));
	ret = ms_writer_header(c->w);
	if (!ret)
		ret = ms_writer_begin(c->w, &h, &p);
	if (!ret)
		ret = ms__ram_put_block_list(ram, p);
	if (!ret)
		ret = ms__ram_put_sync_eos(p, c->owner->n);
	if (!ret)
		ret = ms_writer_end(c->w);
	if (!ret)
		ret = ms_stream_flush(c->s);
	if (ret)
		src_fail(c, p, ret);
	return ret;
}

/* Send channel @c's stripes of every block, then the sync record. */
static int src_pages(struct chan *c, ms_stream *p, uint64_t round)
{
	ms_ram *ram = c->owner->ram;
	unsigned n = c->owner->n;
	uint64_t stripe = 0; /* over the whole RAM */
	int ret;

	for (unsigned b = 0; b < ram->nblk; b++) {
		uint64_t np = ram->blk[b].npages;
		uint64_t ns =
			(np + MS__RAM_STRIPE_PAGES - 1) / MS__RAM_STRIPE_PAGES;
		/* The first of this block's stripes that is ours. */
		uint64_t j = (c->idx + n - (unsigned)(stripe % n)) % n;

		for (; j < ns; j += n) {
			uint64_t first = j * MS__RAM_STRIPE_PAGES;
			uint64_t end = first + MS__RAM_STRIPE_PAGES;

			ret = ms__ram_send_pages(ram, &c->enc, p, b, first,
						 end < np ? end : np);
			if (ret)
				return ret;
		}
		stripe += ns;
	}
	return ms__ram_put_sync_eos(p, round);
}

/* Send round @round of source channel @c (the last one if @final). */
static int src_round(struct chan *c, uint64_t round, bool final)
{
	ms_section_hdr h = {.type = final ? MS_REC_END : MS_REC_PART,
			    .section_id = 0};
	ms_stream *p = NULL;
	int ret;

	ret = ms_writer_begin(c->w, &h, &p);
	if (!ret)
		ret = src_pages(c, p, round);
	if (!ret)
		ret = ms_writer_end(c->w);
	if (!ret && final) {
		ret = ms_writer_eof(c->w);
		if (!ret)
			ret = ms_writer_finish(c->w);
		/* The destination's reader completes at the end of the data:
		 * say that it has come (the descriptor stays open). */
		if (!ret)
			chan_shutdown(c->fd, SHUT_WR);
	} else if (!ret) {
		ret = ms_stream_flush(c->s);
	}
	if (ret)
		src_fail(c, p, ret);
	return ret;
}

/* A source channel's thread: its START, then each round asked for. */
static void *src_thread(void *arg)
{
	struct chan *c = arg;
	struct ms__ram_chan *ch = c->owner;
	uint64_t round;
	bool final;

	if (src_start(c))
		return NULL;
	pthread_mutex_lock(&ch->mu);
	c->started = true;
	pthread_cond_broadcast(&ch->done);
	for (;;) {
		while (!ch->quit && ch->want <= c->round)
			pthread_cond_wait(&ch->work, &ch->mu);
		if (ch->quit)
			break;
		round = ch->want;
		final = ch->final;
		pthread_mutex_unlock(&ch->mu);
		if (src_round(c, round, final))
			return NULL;
		pthread_mutex_lock(&ch->mu);
		c->round = round;
		if (final)
			c->state = CH_DONE;
		pthread_cond_broadcast(&ch->done);
		if (final)
			break;
	}
	pthread_mutex_unlock(&ch->mu);
	return NULL;
}

/*
 * Wait until every source channel has written its START and sent round
 * @round (0: the START only), or one failed; fail @main with the first
 * failure.  Caller holds @ch->mu.
 */
static int chans_wait_sent(struct ms__ram_chan *ch, uint64_t round,
			   ms_stream *main)
{
	for (;;) {
		unsigned i;

		if (ch->first_fail >= 0)
			return main_fail(main, &ch->c[ch->first_fail]);
		for (i = 0; i < ch->n; i++)
			if (!ch->c[i].started || ch->c[i].round < round)
				break;
		if (i == ch->n)
			return 0;
		pthread_cond_wait(&ch->done, &ch->mu);
	}
}

int ms__ram_chan_save_start(ms_ram *ram, ms_stream *main)
{
	int ret;

	if (ram->ch)
		ms__ram_chan_stop(ram, true);
	ret = chans_new(ram, ram->nch, true, main);
	if (ret)
		return ret;
	for (unsigned i = 0; i < ram->nch; i++)
		ms__ram_enc_init(&ram->ch->c[i].enc);
	ret = chans_start(ram, src_thread, main);
	if (ret)
		return ret;
	/* Each thread writes and flushes its START, then waits for round 1
	 * (@want is 0 until then). */
	pthread_mutex_lock(&ram->ch->mu);
	ret = chans_wait_sent(ram->ch, 0, main);
	pthread_mutex_unlock(&ram->ch->mu);
	if (ret)
		return ret;
	/* The destination starts its channel threads at the main START: it
	 * must reach the peer before round 1 can fill the channels' sockets
	 * (QEMU's RAM setup flushes too).  In the QEMU profile this flushes
	 * the main descriptor; in the native one it only closes the chunk,
	 * and the embedder flushes the stream after ms_save_setup(). */
	return ms_stream_flush(main);
}

int ms__ram_chan_save_round(ms_ram *ram, bool final, ms_stream *main)
{
	struct ms__ram_chan *ch = ram->ch;
	ms_ram_stats sum;
	int ret;

	if (!ch || !ch->source)
		return ms_stream_set_error(main, -EINVAL,
					   "RAM channels: a round without a "
					   "started save");
	pthread_mutex_lock(&ch->mu);
	/* Idle threads (each waits for @want): reset their counters. */
	for (unsigned i = 0; i < ch->n; i++)
		memset(&ch->c[i].enc.st, 0, sizeof(ch->c[i].enc.st));
	ch->want = ram->round;
	ch->final = final;
	pthread_cond_broadcast(&ch->work);
	ret = chans_wait_sent(ch, ram->round, main);
	pthread_mutex_unlock(&ch->mu);
	if (ret)
		return ret;
	for (unsigned i = 0; i < ch->n; i++) {
		sum = ch->c[i].enc.st;
		ms__ram_stats_add(ram, &sum);
	}
	return 0;
}

/*
 * Destination.
 */

/* Read the next record of channel @c (@what: what is expected), past
 * section footers and a configuration (checked by the reader). */
static int dst_next(struct chan *c, ms_record *rec, const char *what)
{
	int ret;

	do
		ret = ms_reader_next(c->r, rec);
	while (ret == 1 && (rec->type == MS_REC_FOOTER ||
			    rec->type == MS_REC_CONFIGURATION));

	if (ret < 0) {
		chan_fail_msg(c, ret, ms_reader_error_offset(c->r),
			      ms_reader_errmsg(c->r));
		return ret;
	}
	if (ret == 0) {
		chan_fail_at(c, -ENODATA, ms_stream_tell(c->s), NULL,
			     "the stream ended, expected %s", what);
		return -ENODATA;
	}
	return 0;
}

/* Load the payload of section @rec of channel @c with decoder @d, as the
 * load driver does: the message names the payload's offset. */
static int dst_payload(struct chan *c, const ms_record *rec,
		       struct ms__ram_dec *d)
{
	ms_stream *p = ms_reader_payload(c->r);
	uint64_t start = ms_stream_tell(p);
	bool native = ms_reader_profile(c->r) == MS_PROFILE_NATIVE;
	int ret = ms__ram_load_records(c->owner->ram, d, p);
	int perr = ms_stream_error(p);

	if (ret < 0 || perr) {
		uint64_t off =
			perr ? ms_stream_error_offset(p) : ms_stream_tell(p);
		const char *msg =
			perr ? ms__stream_errtext(p) : ms_strerror(ret);

		if (perr && ms_reader_error(c->r))
			chan_fail_msg(c, ms_reader_error(c->r),
				      ms_reader_error_offset(c->r),
				      ms_reader_errmsg(c->r));
		else if (native)
			chan_fail_at(c, perr ? perr : ret, rec->offset,
				     &rec->section,
				     "load failed at payload offset 0x%llx: %s",
				     (unsigned long long)(off - start), msg);
		else
			chan_fail_at(c, perr ? perr : ret, off, &rec->section,
				     "load failed: %s", msg);
		return perr ? perr : ret;
	}
	if (native && !ms_stream_is_eof(p)) {
		chan_fail_at(c, -EBADMSG, rec->offset, &rec->section,
			     "records after the payload's EOS");
		return -EBADMSG;
	}
	return 0;
}

/* Read channel @c's START: "ram", instance @c->idx, version 4, the block
 * list and the channel count. */
static int dst_start(struct chan *c)
{
	const ms_section_hdr *h;
	struct ms__ram_dec d;
	ms_record rec;
	int ret;

	ret = dst_next(c, &rec, "the START of \"ram\"");
	if (ret)
		return ret;
	h = &rec.section;
	if (rec.type != MS_REC_START || strcmp(h->idstr, MS_QEMU_RAM_IDSTR) ||
	    h->instance_id != c->idx || h->version_id != MS_QEMU_RAM_VERSION) {
		chan_fail_at(c, -EBADMSG, rec.offset, NULL,
			     "expected the START of \"ram\" instance %u "
			     "version %u, found %s '%s' instance %u version %u",
			     c->idx, MS_QEMU_RAM_VERSION,
			     ms_record_type_name(rec.type), h->idstr,
			     h->instance_id, h->version_id);
		return -EBADMSG;
	}
	c->section_id = h->section_id;
	ms__ram_dec_init(&d, (int)c->idx, true, false);
	ret = dst_payload(c, &rec, &d);
	if (ret)
		return ret;
	if (!d.have_sync || d.sync != c->owner->n) {
		chan_fail_at(c, -EBADMSG, rec.offset, h,
			     "expected the channel count %u in the sync "
			     "record, found %s%llu",
			     c->owner->n, d.have_sync ? "" : "no record, ",
			     (unsigned long long)d.sync);
		return -EBADMSG;
	}
	ms__ram_dec_init(&c->dec, (int)c->idx, false, true);
	return 0;
}

/* Read and apply round @round of channel @c; *@end says it was the END. */
static int dst_section(struct chan *c, uint64_t round, bool *end)
{
	struct ms__ram_chan *ch = c->owner;
	ms_record rec;
	int ret;

	ret = dst_next(c, &rec, "a PART or END of \"ram\"");
	if (ret)
		return ret;
	if ((rec.type != MS_REC_PART && rec.type != MS_REC_END) ||
	    rec.section.section_id != c->section_id) {
		chan_fail_at(c, -EBADMSG, rec.offset, NULL,
			     "expected a PART or END of section %u for round "
			     "%llu, found %s of section %u",
			     c->section_id, (unsigned long long)round,
			     ms_record_type_name(rec.type),
			     rec.section.section_id);
		return -EBADMSG;
	}
	c->dec.have_sync = false;
	ret = dst_payload(c, &rec, &c->dec);
	if (ret)
		return ret;
	if (!c->dec.have_sync || c->dec.sync != round) {
		chan_fail_at(c, -EBADMSG, rec.offset, &rec.section,
			     "expected the sync record of round %llu, found "
			     "%s%llu",
			     (unsigned long long)round,
			     c->dec.have_sync ? "round " : "no record, ",
			     (unsigned long long)c->dec.sync);
		return -EBADMSG;
	}
	*end = rec.type == MS_REC_END;
	pthread_mutex_lock(&ch->mu);
	c->round = round;
	c->ended = *end;
	pthread_cond_broadcast(&ch->done);
	pthread_mutex_unlock(&ch->mu);
	return 0;
}

/*
 * Wait until every channel has applied round @round: no page of round
 * @round + 1 may be applied before.  Returns -1 when the load stops (a
 * failure, a channel that ended before @round, or quit).
 */
static int dst_barrier(struct chan *c, uint64_t round)
{
	struct ms__ram_chan *ch = c->owner;
	unsigned i;

	pthread_mutex_lock(&ch->mu);
	for (;;) {
		if (ch->quit || ch->first_fail >= 0)
			break;
		for (i = 0; i < ch->n; i++)
			if (ch->c[i].round < round)
				break;
		if (i == ch->n) {
			pthread_mutex_unlock(&ch->mu);
			return 0;
		}
		if (ch->c[i].ended) {
			uint64_t r = ch->c[i].round;

			pthread_mutex_unlock(&ch->mu);
			chan_fail_at(c, -EBADMSG, ms_stream_tell(c->s), NULL,
				     "round %llu is not the last, but RAM "
				     "channel %u ended with round %llu",
				     (unsigned long long)round, i,
				     (unsigned long long)r);
			return -1;
		}
		pthread_cond_wait(&ch->done, &ch->mu);
	}
	pthread_mutex_unlock(&ch->mu);
	return -1;
}

/* After the END: the EOF record, then the end of the stream (and the
 * trailer, which the reader checks). */
static int dst_finish(struct chan *c)
{
	ms_record rec;
	int ret;

	ret = dst_next(c, &rec, "EOF after the END of \"ram\"");
	if (ret)
		return ret;
	if (rec.type != MS_REC_EOF) {
		chan_fail_at(c, -EBADMSG, rec.offset, NULL,
			     "expected EOF after the END of \"ram\", found %s",
			     ms_record_type_name(rec.type));
		return -EBADMSG;
	}
	while ((ret = ms_reader_next(c->r, &rec)) == 1 &&
	       (rec.type == MS_REC_VMDESC || rec.type == MS_REC_FOOTER))
		;
	if (ret < 0) {
		chan_fail_msg(c, ret, ms_reader_error_offset(c->r),
			      ms_reader_errmsg(c->r));
		return ret;
	}
	if (ret) {
		chan_fail_at(c, -EBADMSG, rec.offset, NULL,
			     "expected the end of the stream, found %s",
			     ms_record_type_name(rec.type));
		return -EBADMSG;
	}
	return 0;
}

/* A destination channel's thread. */
static void *dst_thread(void *arg)
{
	struct chan *c = arg;
	struct ms__ram_chan *ch = c->owner;
	bool end = false;

	if (dst_start(c))
		return NULL;
	for (uint64_t k = 1; !end; k++) {
		if (dst_section(c, k, &end))
			return NULL;
		if (!end && dst_barrier(c, k))
			return NULL;
	}
	if (dst_finish(c))
		return NULL;
	pthread_mutex_lock(&ch->mu);
	c->state = CH_DONE;
	pthread_cond_broadcast(&ch->done);
	pthread_mutex_unlock(&ch->mu);
	return NULL;
}

int ms__ram_chan_load_start(ms_ram *ram, uint64_t n, ms_stream *main)
{
	int ret;

	/* A fed load may run the START's handler again. */
	if (ram->ch && !ram->ch->source && ram->ch->n == n)
		return 0;
	if (n != ram->nch)
		return ms_stream_set_error(
			main, -EBADMSG,
			"RAM channels: the source sends %llu, this destination "
			"was given %u with ms_ram_set_channels()",
			(unsigned long long)n, ram->nch);
	if (ram->ch)
		ms__ram_chan_stop(ram, true);
	ret = chans_new(ram, ram->nch, false, main);
	if (ret)
		return ret;
	return chans_start(ram, dst_thread, main);
}

/* Final sync: every channel ended with round @round; join them.  Caller
 * holds @ch->mu, which this releases. */
static int dst_join(ms_ram *ram, uint64_t round, ms_stream *main)
{
	struct ms__ram_chan *ch = ram->ch;
	int ret = 0;

	for (unsigned i = 0; i < ch->n && !ret; i++) {
		struct chan *c = &ch->c[i];

		if (c->round != round)
			ret = ms_stream_set_error(
				main, -EBADMSG,
				"RAM channel %u: its END is round %llu, the "
				"main stream's round %llu",
				i, (unsigned long long)c->round,
				(unsigned long long)round);
	}
	pthread_mutex_unlock(&ch->mu);
	for (unsigned i = 0; i < ch->n; i++) {
		if (ch->c[i].have_th)
			pthread_join(ch->c[i].th, NULL);
		ch->c[i].have_th = false;
		if (!ret)
			ms__ram_stats_add(ram, &ch->c[i].dec.st);
	}
	ch->joined = true;
	ch->result = ret;
	return ret;
}

int ms__ram_chan_load_sync(ms_ram *ram, uint64_t round, bool final,
			   ms_stream *main)
{
	struct ms__ram_chan *ch = ram->ch;
	unsigned i;

	if (!ch || ch->source)
		return ms_stream_set_error(main, -EBADMSG,
					   "RAM channels: a sync point before "
					   "the channels were started");
	if (ch->joined)
		return ch->result ? ms_stream_set_error(main, ch->result,
							"RAM channels: failed")
				  : 0;
	pthread_mutex_lock(&ch->mu);
	for (;;) {
		if (ch->first_fail >= 0) {
			int ret = main_fail(main, &ch->c[ch->first_fail]);

			pthread_mutex_unlock(&ch->mu);
			return ret;
		}
		if (!final)
			break;
		for (i = 0; i < ch->n; i++)
			if (ch->c[i].state != CH_DONE)
				break;
		if (i == ch->n)
			return dst_join(ram, round, main);
		pthread_cond_wait(&ch->done, &ch->mu);
	}
	pthread_mutex_unlock(&ch->mu);
	return 0;
}

void ms__ram_chan_stop(ms_ram *ram, bool abort)
{
	struct ms__ram_chan *ch = ram->ch;
	bool wake = abort;

	if (!ch)
		return;
	pthread_mutex_lock(&ch->mu);
	ch->quit = true;
	pthread_cond_broadcast(&ch->work);
	pthread_cond_broadcast(&ch->done);
	/* Threads blocked on a descriptor (after a failure, or a destination
	 * still reading) are woken by its shutdown; idle ones by @quit. */
	if (ch->first_fail >= 0)
		wake = true;
	for (unsigned i = 0; i < ch->n; i++)
		if (!ch->source && ch->c[i].have_th &&
		    ch->c[i].state != CH_DONE)
			wake = true;
	pthread_mutex_unlock(&ch->mu);
	if (wake)
		chans_shutdown_all(ch);
	for (unsigned i = 0; i < ch->n; i++) {
		if (ch->c[i].have_th)
			pthread_join(ch->c[i].th, NULL);
		ch->c[i].have_th = false;
	}
	for (unsigned i = 0; i < ch->n; i++)
		chan_close(&ch->c[i], abort || ch->c[i].state != CH_DONE);
	pthread_cond_destroy(&ch->done);
	pthread_cond_destroy(&ch->work);
	pthread_mutex_destroy(&ch->mu);
	ram->ch = NULL;
	ms__free(chan_alloc(ram), ch);
}
