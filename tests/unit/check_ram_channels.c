/* SPDX-License-Identifier: MIT */
/*
 * ms_ram's parallel channels over real descriptors and threads: saves and
 * loads with 1, 2 and 4 channels over socket pairs and loopback TCP, in
 * both main profiles and with native, native+zlib and QEMU channel
 * streams, while a guest thread writes and marks pages dirty, checked
 * byte for byte; the destination's barrier between rounds, with
 * hand-written channel streams delivered out of order; and failures on
 * either side (a peer gone, truncation, wrong instance, round or count,
 * garbage), each with its message and without a hang.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migstream/qemu_ram.h"
#include "migstream/ram.h"
#include "ms-test.h"

#define PAGE 4096u

/* The blocks of the big guest: sizes that are not multiples of the
 * stripe (512 pages), so that stripes straddle blocks, and an empty one. */
static const struct {
	const char *name;
	uint64_t pages;
} big_blocks[] = {
	{"pc.ram", 1300},
	{"vga.vram", 77},
	{"empty", 0},
	{"/rom@etc/acpi/tables", 600},
};
#define NBIG (sizeof(big_blocks) / sizeof(big_blocks[0]))

/* The small guest of the failure tests. */
static const struct {
	const char *name;
	uint64_t pages;
} small_blocks[] = {
	{"pc.ram", 530},
	{"vga.vram", 20},
};
#define NSMALL	(sizeof(small_blocks) / sizeof(small_blocks[0]))
#define NMAXBLK 4

/* A guest: an ms_ram and the memory of its blocks. */
struct vmem {
	ms_ram *ram;
	ms_registry *reg;
	unsigned nblk;
	uint8_t *host[NMAXBLK];
	uint64_t len[NMAXBLK];
};

/* @fill: 0 for a source (every third page zero, the others random, from
 * @seed), else a byte that fills every page (a destination). */
static void vmem_new(struct vmem *v, bool small, int fill, uint64_t seed)
{
	memset(v, 0, sizeof(*v));
	ck_assert_int_eq(ms_ram_new(&v->ram, NULL), 0);
	ck_assert_int_eq(ms_registry_new(&v->reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(v->ram, v->reg, NULL), 0);
	v->nblk = small ? NSMALL : NBIG;
	for (unsigned b = 0; b < v->nblk; b++) {
		uint64_t np =
			small ? small_blocks[b].pages : big_blocks[b].pages;
		ms_ram_block blk = {
			.version = MS_RAM_BLOCK_VERSION,
			.idstr = small ? small_blocks[b].name
				       : big_blocks[b].name,
		};

		v->len[b] = np * PAGE;
		v->host[b] = aligned_alloc(PAGE, np ? np * PAGE : PAGE);
		ck_assert_ptr_nonnull(v->host[b]);
		for (uint64_t p = 0; p < np; p++) {
			uint8_t *pg = v->host[b] + p * PAGE;

			if (fill)
				memset(pg, fill, PAGE);
			else if (p % 3 == 0)
				memset(pg, 0, PAGE);
			else
				ms_test_fill(pg, PAGE, seed + b * 100000 + p);
		}
		blk.host = v->host[b];
		blk.used_length = v->len[b];
		ck_assert_msg(ms_ram_add_block(v->ram, &blk, NULL) == 0, "%s",
			      ms_ram_errmsg(v->ram));
	}
}

static void vmem_free(struct vmem *v)
{
	ms_registry_free(v->reg);
	ms_ram_free(v->ram);
	for (unsigned b = 0; b < v->nblk; b++)
		free(v->host[b]);
}

static void vmem_check_equal(const struct vmem *a, const struct vmem *b)
{
	ck_assert_uint_eq(a->nblk, b->nblk);
	for (unsigned i = 0; i < a->nblk; i++) {
		for (uint64_t off = 0; off < a->len[i]; off += PAGE)
			ck_assert_msg(!memcmp(a->host[i] + off,
					      b->host[i] + off, PAGE),
				      "block %u page %llu differs", i,
				      (unsigned long long)(off / PAGE));
	}
}

/*
 * Transports: [0] the source's end, [1] the destination's.
 */
enum { T_SOCKETPAIR, T_TCP, T_PIPE };

static void make_pair(int kind, int fds[2])
{
	if (kind == T_SOCKETPAIR) {
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		fds[0] = sv[0];
		fds[1] = sv[1];
	} else if (kind == T_PIPE) {
		int p[2];

		ck_assert_int_eq(pipe(p), 0);
		fds[0] = p[1];
		fds[1] = p[0];
	} else {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t alen = sizeof(a);
		int l = socket(AF_INET, SOCK_STREAM, 0);

		ck_assert_int_ge(l, 0);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
		ck_assert_int_eq(listen(l, 1), 0);
		ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen),
				 0);
		fds[0] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(fds[0], 0);
		ck_assert_int_eq(
			connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
		fds[1] = accept(l, NULL, NULL);
		ck_assert_int_ge(fds[1], 0);
		close(l);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * A guest thread: writes pages and marks them dirty until told to stop.
 */
struct guest {
	struct vmem *v;
	atomic_bool stop;
	uint64_t seed;
	atomic_ulong writes;
	pthread_t th;
};

static void *guest_thread(void *arg)
{
	struct guest *g = arg;
	uint64_t st = g->seed | 1;

	while (!atomic_load(&g->stop)) {
		unsigned b = (unsigned)(ms_test_rand(&st) % g->v->nblk);
		uint64_t off, len = 64;

		if (!g->v->len[b])
			continue;
		off = ms_test_rand(&st) % (g->v->len[b] - len);
		if (g->writes % 7 == 0) {
			/* Sometimes a page becomes zero. */
			off -= off % PAGE;
			len = PAGE;
			memset(g->v->host[b] + off, 0, len);
		} else {
			ms_test_fill(g->v->host[b] + off, len, st);
		}
		ms_ram_mark_dirty(g->v->ram, b, off, len);
		if (++g->writes % 64 == 0)
			sleep_ms(1);
	}
	return NULL;
}

/*
 * The source side, on a thread of its own.
 */
struct src_run {
	struct vmem *v;
	int main_fd;
	int chan_fds[MS_RAM_MAX_CHANNELS];
	unsigned nch;
	const ms_codec_opts *main_codec;
	int rounds;
	struct guest *g; /* or NULL */
	int ret;
	char msg[1024];
	ms_ram_stats st;
	pthread_t th;
};

static void *src_thread(void *arg)
{
	struct src_run *r = arg;
	ms_save_opts so = {.version = MS_SAVE_OPTS_VERSION,
			   .codec = r->main_codec};
	ms_stream *s = NULL;
	ms_save *sv = NULL;
	int ret;

	ret = ms_stream_new_fd(&s, r->main_fd, MS_STREAM_WRITER, 0, NULL);
	if (!ret)
		ret = ms_save_new(&sv, r->v->reg, s, &so);
	if (!ret)
		ret = ms_save_setup(sv);
	/* No flush of the test's own: ms_save_setup() brings the main
	 * START, where the destination starts its channel threads, to the
	 * peer before round 1 fills the channels' sockets. */
	/* The guest writes during the precopy rounds, however busy the
	 * machine: the rounds start once it has written (10 s at most). */
	for (int t = 0;
	     r->g && !ret && t < 10000 && !atomic_load(&r->g->writes); t++)
		sleep_ms(1);
	for (int i = 0; i < r->rounds && ret >= 0; i++)
		ret = ms_save_iterate(sv);
	if (r->g) {
		atomic_store(&r->g->stop, true);
		pthread_join(r->g->th, NULL);
	}
	if (ret >= 0)
		ret = ms_save_complete(sv);
	r->ret = ret;
	snprintf(r->msg, sizeof(r->msg), "%s", sv ? ms_save_errmsg(sv) : "");
	ms_ram_get_stats(r->v->ram, &r->st);
	ms_save_free(sv);
	ms_stream_close(s);
	close(r->main_fd);
	for (unsigned i = 0; i < r->nch; i++)
		close(r->chan_fds[i]);
	return NULL;
}

/* Channel codecs of the round trips. */
enum { C_NATIVE, C_ZLIB, C_QEMU, C_COUNT };

static void chan_codec(int kind, ms_codec_opts *o)
{
	ms_codec_opts_init(o);
	if (kind == C_ZLIB)
		o->compress_level = 1;
	else if (kind == C_QEMU)
		o->profile = MS_PROFILE_QEMU;
}

/* A whole migration of the big guest with @nch channels. */
static void roundtrip(unsigned nch, int transport, int ccodec, int mprofile,
		      bool guest)
{
	static struct vmem src, dst;
	struct src_run r = {.v = &src, .nch = nch, .rounds = 3};
	struct guest g = {.v = &src, .seed = 77};
	int dfds[MS_RAM_MAX_CHANNELS], mfd[2];
	ms_codec_opts co, mo;
	ms_stream *in;
	ms_load *ld;
	ms_ram_stats dst_st;

	vmem_new(&src, false, 0, 1000 + nch);
	vmem_new(&dst, false, 0x5a, 0);
	for (unsigned i = 0; i < nch; i++) {
		int p[2];

		make_pair(transport, p);
		r.chan_fds[i] = p[0];
		dfds[i] = p[1];
	}
	chan_codec(ccodec, &co);
	ms_codec_opts_init(&mo);
	mo.profile = mprofile;
	r.main_codec = &mo;
	ck_assert_int_eq(ms_ram_set_channels(src.ram, r.chan_fds, nch, &co), 0);
	ck_assert_int_eq(ms_ram_set_channels(dst.ram, dfds, nch, NULL), 0);
	make_pair(transport, mfd);
	r.main_fd = mfd[0];
	if (guest) {
		r.g = &g;
		ck_assert_int_eq(pthread_create(&g.th, NULL, guest_thread, &g),
				 0);
	}
	ck_assert_int_eq(pthread_create(&r.th, NULL, src_thread, &r), 0);

	ck_assert_int_eq(ms_load_new(&ld, dst.reg, NULL), 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&in, mfd[1], MS_STREAM_READER, 0, NULL), 0);
	ck_assert_msg(ms_load_run(ld, in) == 0, "load: %s", ms_load_errmsg(ld));
	pthread_join(r.th, NULL);
	ck_assert_msg(r.ret == 0, "save: %s", r.msg);
	ck_assert_msg(ms_ram_load_check(dst.ram) == 0, "%s",
		      ms_ram_errmsg(dst.ram));
	vmem_check_equal(&src, &dst);
	ms_ram_get_stats(dst.ram, &dst_st);
	ck_assert_uint_eq(dst_st.pages, r.st.pages);
	ck_assert_uint_eq(dst_st.zero_pages, r.st.zero_pages);
	ck_assert_uint_ge(r.st.pages, 1977);
	if (guest)
		ck_assert_uint_gt(atomic_load(&g.writes), 0);
	ms_load_free(ld);
	ms_stream_close(in);
	close(mfd[1]);
	for (unsigned i = 0; i < nch; i++)
		close(dfds[i]);
	vmem_free(&src);
	vmem_free(&dst);
}

/* _i: channels (1, 2, 4) x transport (2) x channel codec (3) x main
 * profile (2). */
START_TEST(test_roundtrip)
{
	static const unsigned nchs[] = {1, 2, 4};
	int i = _i;
	int mprof = i % 2 ? MS_PROFILE_QEMU : MS_PROFILE_NATIVE;
	int ccodec = (i / 2) % C_COUNT;
	int transport = (i / 6) % 2 ? T_TCP : T_SOCKETPAIR;
	unsigned nch = nchs[i / 12];

	roundtrip(nch, transport, ccodec, mprof, true);
}
END_TEST

/* Without channels the same guest goes through the main stream. */
START_TEST(test_roundtrip_no_channels)
{
	roundtrip(0, T_SOCKETPAIR, C_NATIVE,
		  _i ? MS_PROFILE_QEMU : MS_PROFILE_NATIVE, true);
}
END_TEST

/*
 * Hand-written streams in QEMU's RAM grammar, for the destination.
 */

/* One page record: page @page of the one block, every byte @fill. */
struct hpage {
	uint64_t page;
	uint8_t fill;
};

/* One section: PART or END, its sync value, its pages. */
struct hsec {
	uint8_t type;
	uint64_t sync;
	const struct hpage *pages;
	unsigned npages;
};

/* A stream: the START of "ram" @inst with the block list of the small
 * guest and sync value @count, then @nsec sections, then EOF. */
struct hspec {
	uint32_t inst;
	uint64_t count;
	const struct hsec *secs;
	unsigned nsec;
};

static void put_sync_eos(ms_stream *p, uint64_t v)
{
	ms_put_be64(p, v << 16 | MS_QEMU_RAM_MULTIFD_FLUSH);
	ms_put_be64(p, MS_QEMU_RAM_EOS);
}

static void put_start(ms_writer *w, const struct hspec *sp)
{
	ms_section_hdr h = {.type = MS_REC_START,
			    .section_id = 0,
			    .instance_id = sp->inst,
			    .version_id = 4};
	ms_stream *p;
	uint64_t total = 0;

	strcpy(h.idstr, "ram");
	for (unsigned b = 0; b < NSMALL; b++)
		total += small_blocks[b].pages * PAGE;
	ck_assert_int_eq(ms_writer_begin(w, &h, &p), 0);
	ms_put_be64(p, total | MS_QEMU_RAM_MEM_SIZE);
	for (unsigned b = 0; b < NSMALL; b++) {
		ms_put_counted_string(p, small_blocks[b].name);
		ms_put_be64(p, small_blocks[b].pages * PAGE);
	}
	put_sync_eos(p, sp->count);
	ck_assert_int_eq(ms_writer_end(w), 0);
}

static void put_section(ms_writer *w, const struct hsec *sec)
{
	ms_section_hdr h = {.type = sec->type, .section_id = 0};
	static uint8_t page[PAGE];
	ms_stream *p;

	ck_assert_int_eq(ms_writer_begin(w, &h, &p), 0);
	for (unsigned i = 0; i < sec->npages; i++) {
		uint64_t flags = MS_QEMU_RAM_PAGE;

		if (i)
			flags |= MS_QEMU_RAM_CONTINUE;
		ms_put_be64(p, sec->pages[i].page * PAGE | flags);
		if (!i)
			ms_put_counted_string(p, small_blocks[0].name);
		memset(page, sec->pages[i].fill, PAGE);
		ms_put_buffer(p, page, PAGE);
	}
	put_sync_eos(p, sec->sync);
	ck_assert_int_eq(ms_writer_end(w), 0);
}

/* Write stream @sp on @s with ms_writer (native profile). */
static void write_hstream(ms_stream *s, const struct hspec *sp)
{
	ms_writer *w;

	ck_assert_int_eq(ms_writer_new(&w, s, NULL), 0);
	ck_assert_int_eq(ms_writer_header(w), 0);
	put_start(w, sp);
	for (unsigned i = 0; i < sp->nsec; i++)
		put_section(w, &sp->secs[i]);
	ck_assert_int_eq(ms_writer_eof(w), 0);
	ck_assert_msg(ms_writer_finish(w) == 0, "%s", ms_writer_errmsg(w));
	ms_writer_free(w);
}

/* A byte buffer. */
struct bytes {
	uint8_t *p;
	size_t len;
};

static void hstream_bytes(const struct hspec *sp, struct bytes *out)
{
	const uint8_t *data;
	ms_stream *s;

	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	write_hstream(s, sp);
	ck_assert_int_eq(ms_stream_mem_view(s, &data, &out->len), 0);
	out->p = malloc(out->len ? out->len : 1);
	memcpy(out->p, data, out->len);
	ms_stream_close(s);
}

/*
 * Feeders: a thread that writes a channel's bytes (or a hand-written
 * stream) into its descriptor after a delay, and closes it unless told
 * to keep it open.
 */
struct feeder {
	int fd;
	struct bytes b;
	const struct hspec *spec; /* written with ms_writer when set */
	int delay_ms;
	bool keep_open;
	pthread_t th;
};

static void *feeder_thread(void *arg)
{
	struct feeder *f = arg;

	sleep_ms(f->delay_ms);
	if (f->spec) {
		ms_stream *s;

		if (!ms_stream_new_fd(&s, f->fd, MS_STREAM_WRITER, 0, NULL)) {
			write_hstream(s, f->spec);
			ms_stream_close(s);
		}
	} else {
		size_t off = 0;

		while (off < f->b.len) {
			ssize_t n = write(f->fd, f->b.p + off, f->b.len - off);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	if (!f->keep_open)
		close(f->fd);
	return NULL;
}

/* The main stream of the hand-written migrations: @n channels, rounds 1
 * to @rounds (the last an END). */
static void main_hstream(uint64_t n, unsigned rounds, struct bytes *out)
{
	struct hsec secs[8];
	struct hspec sp = {.inst = 0, .count = n, .secs = secs, .nsec = rounds};

	for (unsigned i = 0; i < rounds; i++)
		secs[i] = (struct hsec){.type = i + 1 < rounds ? MS_REC_PART
							       : MS_REC_END,
					.sync = i + 1};
	hstream_bytes(&sp, out);
}

/*
 * A destination (the small guest, @ndest channels over @transport) loads
 * @mainb; channel i gets feeder @f[i] (its fd filled in here).  Returns
 * the load's result; its message in @msg.  ms_ram_free() must return
 * within a second.
 */
static int dst_run(const struct bytes *mainb, struct feeder *f, unsigned nf,
		   unsigned ndest, int transport, struct vmem *keep, char *msg,
		   size_t msglen)
{
	struct vmem dst;
	int dfds[MS_RAM_MAX_CHANNELS];
	ms_stream *in;
	ms_load *ld;
	double t;
	int ret;

	vmem_new(&dst, true, 0x5a, 0);
	for (unsigned i = 0; i < ndest || i < nf; i++) {
		int p[2];

		make_pair(transport, p);
		dfds[i] = p[1];
		if (i < nf) {
			f[i].fd = p[0];
			ck_assert_int_eq(pthread_create(&f[i].th, NULL,
							feeder_thread, &f[i]),
					 0);
		} else {
			close(p[0]);
		}
	}
	ck_assert_msg(ms_ram_set_channels(dst.ram, dfds, ndest, NULL) == 0,
		      "%s", ms_ram_errmsg(dst.ram));
	ck_assert_int_eq(ms_load_new(&ld, dst.reg, NULL), 0);
	ck_assert_int_eq(
		ms_stream_new_mem_reader(&in, mainb->p, mainb->len, NULL), 0);
	ret = ms_load_run(ld, in);
	if (!ret)
		ret = ms_ram_load_check(dst.ram);
	snprintf(msg, msglen, "%s",
		 ms_load_error(ld) ? ms_load_errmsg(ld)
				   : ms_ram_errmsg(dst.ram));
	ms_load_free(ld);
	ms_stream_close(in);
	if (keep) {
		*keep = dst;
	} else {
		t = now_s();
		ms_registry_free(dst.reg);
		ms_ram_free(dst.ram);
		ck_assert_msg(now_s() - t < 1.0, "ms_ram_free took %.2f s",
			      now_s() - t);
		dst.reg = NULL;
		dst.ram = NULL;
		vmem_free(&dst);
	}
	/* Feeders blocked on a channel nobody reads fail once its reading
	 * end is closed. */
	for (unsigned i = 0; i < ndest || i < nf; i++)
		close(dfds[i]);
	for (unsigned i = 0; i < nf; i++) {
		if (f[i].keep_open)
			close(f[i].fd);
		pthread_join(f[i].th, NULL);
	}
	return ret;
}

/*
 * The barrier: page 7 is channel 0's in round 1 (content A) and channel
 * 1's in round 2 (content B); channel 1's bytes come first, channel 0's
 * 300 ms later.  Without the barrier channel 1 would write B at once and
 * channel 0 overwrite it with A later; with it, channel 1 applies round 2
 * only after channel 0 applied round 1.
 */
START_TEST(test_order_barrier)
{
	static const struct hpage pa = {7, 0xa1}, pb = {7, 0xb2};
	static const struct hsec s0[] = {{MS_REC_PART, 1, &pa, 1},
					 {MS_REC_END, 2, NULL, 0}};
	static const struct hsec s1[] = {{MS_REC_PART, 1, NULL, 0},
					 {MS_REC_END, 2, &pb, 1}};
	static const struct hspec c0 = {0, 2, s0, 2}, c1 = {1, 2, s1, 2};
	struct feeder f[2] = {{.spec = &c0, .delay_ms = 300}, {.spec = &c1}};
	struct bytes mainb;
	struct vmem dst;
	char msg[1024];

	main_hstream(2, 2, &mainb);
	ck_assert_msg(
		dst_run(&mainb, f, 2, 2, T_PIPE, &dst, msg, sizeof(msg)) == 0,
		"%s", msg);
	for (unsigned i = 0; i < PAGE; i++)
		ck_assert_uint_eq(dst.host[0][7 * PAGE + i], 0xb2);
	/* The pages no record named are untouched. */
	ck_assert_uint_eq(dst.host[0][6 * PAGE], 0x5a);
	vmem_free(&dst);
	free(mainb.p);
}
END_TEST

/*
 * A real save of the small guest with @n channels into files; returns the
 * main stream and each channel's bytes.
 */
static void save_small(unsigned n, int ccodec, struct bytes *mainb,
		       struct bytes *chb)
{
	struct vmem src;
	int fds[MS_RAM_MAX_CHANNELS];
	ms_codec_opts co;
	ms_stream *s;
	ms_save *sv;
	const uint8_t *data;

	vmem_new(&src, true, 0, 4242);
	for (unsigned i = 0; i < n; i++) {
		FILE *f = tmpfile();

		ck_assert_ptr_nonnull(f);
		fds[i] = dup(fileno(f));
		fclose(f);
	}
	chan_codec(ccodec, &co);
	ck_assert_int_eq(ms_ram_set_channels(src.ram, fds, n, &co), 0);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, src.reg, s, NULL), 0);
	ck_assert_msg(ms_save_setup(sv) == 0, "%s", ms_save_errmsg(sv));
	ck_assert_msg(ms_save_iterate(sv) >= 0, "%s", ms_save_errmsg(sv));
	ms_ram_mark_dirty(src.ram, 0, 5 * PAGE, 1);
	ck_assert_msg(ms_save_iterate(sv) >= 0, "%s", ms_save_errmsg(sv));
	ck_assert_msg(ms_save_complete(sv) == 0, "%s", ms_save_errmsg(sv));
	ms_save_free(sv);
	ck_assert_int_eq(ms_stream_mem_view(s, &data, &mainb->len), 0);
	mainb->p = malloc(mainb->len);
	memcpy(mainb->p, data, mainb->len);
	ms_stream_close(s);
	for (unsigned i = 0; i < n; i++) {
		off_t end = lseek(fds[i], 0, SEEK_END);

		ck_assert_int_gt(end, 0);
		chb[i].len = (size_t)end;
		chb[i].p = malloc(chb[i].len);
		ck_assert_int_eq(pread(fds[i], chb[i].p, chb[i].len, 0),
				 (ssize_t)chb[i].len);
		close(fds[i]);
	}
	vmem_free(&src);
}

/* The saved small guest loads: the files are good streams. */
START_TEST(test_files_load)
{
	struct bytes mainb, chb[2];
	struct feeder f[2] = {{0}};
	char msg[1024];

	save_small(2, C_NATIVE, &mainb, chb);
	f[0].b = chb[0];
	f[1].b = chb[1];
	ck_assert_msg(dst_run(&mainb, f, 2, 2, T_SOCKETPAIR, NULL, msg,
			      sizeof(msg)) == 0,
		      "%s", msg);
	free(mainb.p);
	free(chb[0].p);
	free(chb[1].p);
}
END_TEST

/* Check that @msg contains @want. */
#define ck_assert_has(msg, want)                                               \
	ck_assert_msg(strstr((msg), (want)), "expected \"%s\" in \"%s\"",      \
		      (want), (msg))

/* Failures of a destination channel: _i says which. */
enum { F_TRUNCATED, F_INSTANCE, F_GARBAGE, F_GARBAGE_OTHER_OPEN, F_COUNT };

START_TEST(test_dst_channel_fails)
{
	static const char *const want_inst[] = {
		"RAM channel 0: offset 0x10: expected the START of \"ram\" "
		"instance 0 version 4, found START 'ram' instance 1",
		"RAM channel 1: offset 0x10: expected the START of \"ram\" "
		"instance 1 version 4, found START 'ram' instance 0",
	};
	struct bytes mainb, chb[2];
	struct feeder f[2] = {{0}};
	uint64_t st = 99;
	char msg[1024];
	int ret;

	save_small(2, _i == F_TRUNCATED ? C_ZLIB : C_NATIVE, &mainb, chb);
	f[0].b = chb[0];
	f[1].b = chb[1];
	switch (_i) {
	case F_TRUNCATED:
		f[1].b.len /= 2;
		break;
	case F_INSTANCE:
		f[0].b = chb[1];
		f[1].b = chb[0];
		break;
	case F_GARBAGE_OTHER_OPEN:
		/* Channel 0 sends nothing and stays open: its thread is
		 * blocked in read(2) when channel 1 fails. */
		f[0].b.len = 0;
		f[0].keep_open = true;
		/* fall through */
	case F_GARBAGE:
		for (size_t i = 0; i < f[1].b.len; i++)
			f[1].b.p[i] = (uint8_t)ms_test_rand(&st);
		break;
	}
	ret = dst_run(&mainb, f, 2, 2, T_SOCKETPAIR, NULL, msg, sizeof(msg));
	ck_assert_int_lt(ret, 0);
	switch (_i) {
	case F_TRUNCATED:
		ck_assert_has(msg, "RAM channel 1: offset 0x");
		break;
	case F_INSTANCE:
		/* Both channels are wrong; either may fail first. */
		ck_assert_msg(strstr(msg, want_inst[0]) ||
				      strstr(msg, want_inst[1]),
			      "%s", msg);
		break;
	default:
		ck_assert_has(msg, "RAM channel 1: offset 0x0:");
		break;
	}
	free(mainb.p);
	free(chb[0].p);
	free(chb[1].p);
}
END_TEST

/* A channel whose rounds skip one: PART 1, then END 3. */
START_TEST(test_dst_wrong_round)
{
	static const struct hpage pa = {3, 0x11};
	static const struct hsec s0[] = {{MS_REC_PART, 1, &pa, 1},
					 {MS_REC_END, 2, NULL, 0}};
	static const struct hsec s1[] = {{MS_REC_PART, 1, NULL, 0},
					 {MS_REC_END, 3, &pa, 1}};
	static const struct hspec c0 = {0, 2, s0, 2}, c1 = {1, 2, s1, 2};
	struct feeder f[2] = {{.spec = &c0}, {.spec = &c1}};
	struct bytes mainb;
	char msg[1024];

	main_hstream(2, 2, &mainb);
	ck_assert_int_lt(
		dst_run(&mainb, f, 2, 2, T_PIPE, NULL, msg, sizeof(msg)), 0);
	ck_assert_has(msg, "RAM channel 1: offset 0x");
	ck_assert_has(msg,
		      "expected the sync record of round 2, found round 3");
	free(mainb.p);
}
END_TEST

/* A channel that ends (END of round 1) while the other goes on: _i 0,
 * to a PART of round 2 (its thread waits at barrier 2 for a channel that
 * ended: it must fail, not wait), 1, to its END of round 2 (the final
 * sync finds the early END). */
START_TEST(test_dst_early_end)
{
	static const struct hsec s0[] = {{MS_REC_PART, 1, NULL, 0},
					 {MS_REC_PART, 2, NULL, 0},
					 {MS_REC_END, 3, NULL, 0}};
	static const struct hsec s0b[] = {{MS_REC_PART, 1, NULL, 0},
					  {MS_REC_END, 2, NULL, 0}};
	static const struct hsec s1[] = {{MS_REC_END, 1, NULL, 0}};
	static const struct hspec c0 = {0, 2, s0, 3}, c0b = {0, 2, s0b, 2},
				  c1 = {1, 2, s1, 1};
	struct feeder f[2] = {{.spec = _i ? &c0b : &c0}, {.spec = &c1}};
	struct bytes mainb;
	char msg[1024];

	main_hstream(2, _i ? 2 : 3, &mainb);
	ck_assert_int_lt(
		dst_run(&mainb, f, 2, 2, T_PIPE, NULL, msg, sizeof(msg)), 0);
	if (_i == 0)
		ck_assert_has(msg, "RAM channel 0: offset 0x");
	if (_i == 0)
		ck_assert_has(msg, "round 2 is not the last, but RAM channel 1 "
				   "ended with round 1");
	else
		ck_assert_has(msg, "RAM channel 1: its END is round 1, the "
				   "main stream's round 2");
	free(mainb.p);
}
END_TEST

/* Source and destination with other channel counts: _i 0: 2 and 4; 1: 2
 * and 0; 2: 0 and 2. */
START_TEST(test_dst_wrong_count)
{
	static const unsigned src_n[] = {2, 2, 0}, dst_n[] = {4, 0, 2};
	struct bytes mainb, chb[2];
	struct feeder f[2] = {{0}};
	unsigned n = src_n[_i];
	char msg[1024];

	save_small(n, C_NATIVE, &mainb, chb);
	for (unsigned i = 0; i < n; i++)
		f[i].b = chb[i];
	ck_assert_int_lt(dst_run(&mainb, f, n, dst_n[_i], T_SOCKETPAIR, NULL,
				 msg, sizeof(msg)),
			 0);
	if (_i == 0)
		ck_assert_has(msg, "RAM channels: 4 expected "
				   "(ms_ram_set_channels()), found 2 on the "
				   "source");
	else if (_i == 1)
		ck_assert_has(msg, "a RAM channel sync point found: the source "
				   "sends pages on 2 channels; call "
				   "ms_ram_set_channels()");
	else
		ck_assert_has(msg, "RAM channels: a sync point with the "
				   "source's count (2, ms_ram_set_channels()) "
				   "expected after the block list, found none");
	fprintf(stderr, "wrong count %u -> %u: %s\n", n, dst_n[_i], msg);
	free(mainb.p);
	for (unsigned i = 0; i < n; i++)
		free(chb[i].p);
}
END_TEST

/* Drain a descriptor until its end. */
static void *drain_thread(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/*
 * A source channel whose peer closes mid-save fails the save, naming the
 * channel and its offset; the same ms_ram then saves again over fresh
 * descriptors.
 */
START_TEST(test_src_peer_closed)
{
	static struct vmem src;
	int p0[2], p1[2], fds[2];
	pthread_t drain;
	ms_stream *s;
	ms_save *sv;
	int ret;

	vmem_new(&src, false, 0, 5);
	make_pair(T_SOCKETPAIR, p0);
	make_pair(T_SOCKETPAIR, p1);
	fds[0] = p0[0];
	fds[1] = p1[0];
	ck_assert_int_eq(ms_ram_set_channels(src.ram, fds, 2, NULL), 0);
	ck_assert_int_eq(pthread_create(&drain, NULL, drain_thread, &p0[1]), 0);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, src.reg, s, NULL), 0);
	ck_assert_msg(ms_save_setup(sv) == 0, "%s", ms_save_errmsg(sv));
	close(p1[1]);
	ret = ms_save_iterate(sv);
	if (ret >= 0)
		ret = ms_save_complete(sv);
	ck_assert_int_lt(ret, 0);
	ck_assert_has(ms_save_errmsg(sv), "RAM channel 1: offset 0x");
	fprintf(stderr, "peer closed: %s\n", ms_save_errmsg(sv));
	ms_save_free(sv);
	ms_stream_close(s);
	pthread_join(drain, NULL);
	close(p0[0]);
	close(p0[1]);
	close(p1[0]);

	/* The same ms_ram, fresh descriptors: a whole migration. */
	{
		static struct vmem dst;
		struct src_run r = {.v = &src, .nch = 2, .rounds = 2};
		int dfds[2], mfd[2];
		ms_stream *in;
		ms_load *ld;

		vmem_new(&dst, false, 0x5a, 0);
		for (unsigned i = 0; i < 2; i++) {
			int p[2];

			make_pair(T_SOCKETPAIR, p);
			r.chan_fds[i] = p[0];
			dfds[i] = p[1];
		}
		ck_assert_int_eq(
			ms_ram_set_channels(src.ram, r.chan_fds, 2, NULL), 0);
		ck_assert_int_eq(ms_ram_set_channels(dst.ram, dfds, 2, NULL),
				 0);
		make_pair(T_SOCKETPAIR, mfd);
		r.main_fd = mfd[0];
		ck_assert_int_eq(pthread_create(&r.th, NULL, src_thread, &r),
				 0);
		ck_assert_int_eq(ms_load_new(&ld, dst.reg, NULL), 0);
		ck_assert_int_eq(ms_stream_new_fd(&in, mfd[1], MS_STREAM_READER,
						  0, NULL),
				 0);
		ck_assert_msg(ms_load_run(ld, in) == 0, "load: %s",
			      ms_load_errmsg(ld));
		pthread_join(r.th, NULL);
		ck_assert_msg(r.ret == 0, "save: %s", r.msg);
		vmem_check_equal(&src, &dst);
		ms_load_free(ld);
		ms_stream_close(in);
		close(mfd[1]);
		close(dfds[0]);
		close(dfds[1]);
		vmem_free(&dst);
	}
	vmem_free(&src);
}
END_TEST

static Suite *ram_channels_suite(void)
{
	Suite *s = suite_create("ram_channels");
	TCase *tc;

	/* A peer that closes must fail a write, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_roundtrip, 0, 36);
	tcase_add_loop_test(tc, test_roundtrip_no_channels, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_order_barrier);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_files_load);
	tcase_add_loop_test(tc, test_dst_channel_fails, 0, F_COUNT);
	tcase_add_test(tc, test_dst_wrong_round);
	tcase_add_loop_test(tc, test_dst_early_end, 0, 2);
	tcase_add_loop_test(tc, test_dst_wrong_count, 0, 3);
	tcase_add_test(tc, test_src_peer_closed);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(ram_channels_suite)
