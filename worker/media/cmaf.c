/* cmaf.c — one CMAF track written as init.mp4 + seg_NNNNN.m4s (mediai.h).
 *
 * libavformat's mp4 muxer does the boxes (movflags cmaf, frag_custom,
 * empty_moov, default_base_moof, delay_moov, skip_trailer) into an
 * AVIOContext whose bytes we capture in memory. av_write_frame(ctx, NULL)
 * flushes one fragment (moof+mdat): that is one segment file. With
 * delay_moov the init boxes (ftyp+moov) come out with the first fragment
 * (so the edit list for encoder delay is known); we split them off at the
 * first top-level moof/styp/sidx. Each segment's start, length, size and
 * the end of its first (IDR) sample are recorded for the manifests. */
#include "mediai.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct cmaf_out {
    char dir[4096];
    char rel[32];
    const media_events *ev;
    AVFormatContext *oc;
    AVRational enc_tb;
    uint8_t *cap;          /* captured bytes since the last cut */
    size_t caplen, capsz;
    int cap_oom;
    int header_done;       /* init.mp4 written */
    int init_quiet;        /* init.mp4 is written but not announced (cmaf_keep_init) */
    pkg_seg *segs;
    int nsegs, segsz;
    int open_seg;          /* a segment has packets not yet written */
    int64_t seg_start;     /* pts (mux tb) of the open segment's first packet */
    int64_t end;           /* max pts + duration seen (mux tb) */
    int64_t bytes, packets;
    int timescale;
    int64_t init_bytes;
    int seg_base;          /* number of the first segment (a chunk of a title) */
    int64_t off_enc;       /* the chunk's start, encoder time base: taken off before muxing */
    int64_t off_mux;       /* ... and put back into tfdt and the records, mux time base */
};

static int cap_write(void *opaque, uint8_t *buf, int n)
{
    cmaf_out *c = opaque;
    if (c->caplen + (size_t)n > c->capsz) {
        size_t nsz = c->capsz ? c->capsz * 2 : (1 << 20);
        while (nsz < c->caplen + (size_t)n)
            nsz *= 2;
        uint8_t *p = realloc(c->cap, nsz);
        if (!p) {
            c->cap_oom = 1;
            return AVERROR(ENOMEM);
        }
        c->cap = p;
        c->capsz = nsz;
    }
    memcpy(c->cap + c->caplen, buf, (size_t)n);
    c->caplen += (size_t)n;
    return n;
}

int media_write_file(const char *dir, const char *rel, const char *name, const void *data,
                     size_t len, const media_events *ev, ss_err *err)
{
    /* the temporary name is the writer's own: the chunks of a split job
     * (threads of `encode --split`) each write the same init.mp4, and one's
     * rename took another's .part away ("cannot write init.mp4: No such
     * file or directory" in test_split, now and then) */
    static atomic_uint seq;
    char path[4352], tmp[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.%ld-%u.part", path, (long)getpid(), atomic_fetch_add(&seq, 1));
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return ss_fail(err, SS_EIO, "cannot write %s: %s", path, strerror(errno));
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int bad = w != len;
    if (fclose(f) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ss_fail(err, SS_EIO, "cannot write %s: %s", path, strerror(e));
    }
    if (ev && ev->file_ready) {
        char r[512];
        if (rel && rel[0])
            snprintf(r, sizeof(r), "%s/%s", rel, name);
        else
            snprintf(r, sizeof(r), "%s", name);
        ev->file_ready(ev->ud, r);
    }
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Size of the box at p (limit n), 0 when malformed. */
static uint64_t box_size(const uint8_t *p, size_t n)
{
    if (n < 8)
        return 0;
    uint64_t s = rd32(p);
    if (s == 1) {
        if (n < 16)
            return 0;
        s = (uint64_t)rd32(p + 8) << 32 | rd32(p + 12);
    } else if (s == 0) {
        s = n;
    }
    if (s < 8 || s > n)
        return 0;
    return s;
}

static const uint8_t *find_box(const uint8_t *p, size_t n, const char *type, size_t *len)
{
    size_t off = 0;
    while (off + 8 <= n) {
        uint64_t s = box_size(p + off, n - off);
        if (!s)
            return NULL;
        if (!memcmp(p + off + 4, type, 4)) {
            *len = (size_t)s;
            return p + off;
        }
        off += (size_t)s;
    }
    return NULL;
}

int64_t cmaf_first_sample_end(const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off + 8 <= n) {
        uint64_t s = box_size(p + off, n - off);
        if (!s)
            return -1;
        if (!memcmp(p + off + 4, "moof", 4)) {
            size_t tl, hl, rl;
            const uint8_t *traf = find_box(p + off + 8, (size_t)s - 8, "traf", &tl);
            if (!traf)
                return -1;
            const uint8_t *tfhd = find_box(traf + 8, tl - 8, "tfhd", &hl);
            const uint8_t *trun = find_box(traf + 8, tl - 8, "trun", &rl);
            if (!tfhd || !trun || rl < 16 || hl < 16)
                return -1;
            uint32_t hflags = rd32(tfhd + 8) & 0xffffff;
            size_t hp = 16;            /* after track_ID */
            int64_t def_size = -1;
            if (hflags & 0x1)
                hp += 8;
            if (hflags & 0x2)
                hp += 4;
            if (hflags & 0x8)
                hp += 4;
            if ((hflags & 0x10) && hp + 4 <= hl)
                def_size = rd32(tfhd + hp);
            uint32_t flags = rd32(trun + 8) & 0xffffff;
            uint32_t count = rd32(trun + 12);
            size_t q = 16;
            int64_t data_off = 0;
            if (flags & 0x1) {
                if (q + 4 > rl)
                    return -1;
                data_off = (int32_t)rd32(trun + q);
                q += 4;
            }
            if (flags & 0x4)
                q += 4;
            if (flags & 0x100)
                q += 4;
            int64_t size0 = def_size;
            if (flags & 0x200) {
                if (q + 4 > rl)
                    return -1;
                size0 = rd32(trun + q);
            }
            if (!count || size0 < 0)
                return -1;
            return (int64_t)off + data_off + size0;
        }
        off += (size_t)s;
    }
    return -1;
}

cmaf_out *cmaf_open(const char *dir, const char *rel, const AVCodecContext *enc,
                    const media_events *ev, ss_err *err)
{
    cmaf_out *c = calloc(1, sizeof(*c));
    if (!c) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    ss_strlcpy(c->rel, rel, sizeof(c->rel));
    c->ev = ev;
    c->enc_tb = enc->time_base;
    c->end = AV_NOPTS_VALUE;
    if (ss_mkdir_p(dir, err))
        goto fail;
    int r = avformat_alloc_output_context2(&c->oc, NULL, "mp4", NULL);
    if (r < 0 || !c->oc) {
        ss_fail(err, SS_EINTERNAL, "mp4 muxer not available");
        goto fail;
    }
    const size_t iosz = 65536;
    uint8_t *iobuf = av_malloc(iosz);
    if (!iobuf)
        goto oom;
    c->oc->pb = avio_alloc_context(iobuf, (int)iosz, 1, c, NULL, cap_write, NULL);
    if (!c->oc->pb) {
        av_free(iobuf);
        goto oom;
    }
    c->oc->pb->seekable = 0;
    c->oc->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_BITEXACT;
    AVStream *st = avformat_new_stream(c->oc, NULL);
    if (!st)
        goto oom;
    if (avcodec_parameters_from_context(st->codecpar, enc) < 0)
        goto oom;
    st->time_base = enc->time_base;
    AVDictionary *o = NULL;
    av_dict_set(&o, "movflags",
                "cmaf+frag_custom+empty_moov+default_base_moof+delay_moov+skip_trailer+skip_sidx", 0);
    av_dict_set(&o, "use_editlist", "1", 0);
    r = avformat_write_header(c->oc, &o);
    av_dict_free(&o);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        ss_fail(err, SS_EINTERNAL, "mp4 muxer for %s: %s", rel, e);
        goto fail;
    }
    c->timescale = st->time_base.den;
    return c;
oom:
    ss_fail(err, SS_ENOMEM, "out of memory");
fail:
    cmaf_free(&c);
    return NULL;
}

void cmaf_keep_init(cmaf_out *c)
{
    c->init_quiet = 1;
}

void cmaf_set_base(cmaf_out *c, int seg_base, int64_t start)
{
    c->seg_base = seg_base;
    c->off_enc = start;
    c->off_mux = av_rescale_q(start, c->enc_tb, c->oc->streams[0]->time_base);
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A chunk's fragment as if one muxer had written the whole title: its
 * moof's sequence number and every traf's decode time moved on by the
 * chunk's start. Returns -1 when the boxes are not where they must be. */
static int rebase_fragment(cmaf_out *c, uint8_t *p, size_t n)
{
    size_t ml;
    uint8_t *moof = (uint8_t *)find_box(p, n, "moof", &ml);
    if (!moof)
        return -1;
    size_t in = 8;
    while (in + 8 <= ml) {
        uint64_t bs = box_size(moof + in, ml - in);
        if (!bs)
            return -1;
        uint8_t *b = moof + in;
        if (!memcmp(b + 4, "mfhd", 4) && bs >= 16) {
            wr32(b + 12, rd32(b + 12) + (uint32_t)c->seg_base);
        } else if (!memcmp(b + 4, "traf", 4)) {
            size_t tl;
            uint8_t *t = (uint8_t *)find_box(b + 8, (size_t)bs - 8, "tfdt", &tl);
            if (!t || tl < 16)
                return -1;
            if (t[8] == 1 && tl >= 20) {
                uint64_t v = (uint64_t)rd32(t + 12) << 32 | rd32(t + 16);
                v += (uint64_t)c->off_mux;
                wr32(t + 12, (uint32_t)(v >> 32));
                wr32(t + 16, (uint32_t)v);
            } else {
                wr32(t + 12, rd32(t + 12) + (uint32_t)c->off_mux);
            }
        }
        in += (size_t)bs;
    }
    return 0;
}

static int add_seg(cmaf_out *c, ss_err *err)
{
    if (c->nsegs == c->segsz) {
        int n = c->segsz ? c->segsz * 2 : 64;
        pkg_seg *p = realloc(c->segs, (size_t)n * sizeof(*p));
        if (!p)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        c->segs = p;
        c->segsz = n;
    }
    return 0;
}

static int flush(cmaf_out *c, ss_err *err)
{
    int r = av_write_frame(c->oc, NULL);
    avio_flush(c->oc->pb);
    if (r < 0 || c->cap_oom) {
        char e[128];
        media_averr(r < 0 ? r : AVERROR(ENOMEM), e, sizeof(e));
        return ss_fail(err, r < 0 ? SS_EINTERNAL : SS_ENOMEM, "mp4 fragment for %s: %s", c->rel, e);
    }
    return 0;
}

/* Flush the open fragment and write it as the next segment, ending at
 * next_start (mux tb). With delay_moov the first flush gives only the init
 * boxes (ftyp+moov, with the edit list for the encoder delay); the samples
 * stay queued for the second. */
static int cut(cmaf_out *c, int64_t next_start, ss_err *err)
{
    if (!c->open_seg)
        return 0;
    if (!c->header_done) {
        if (flush(c, err))
            return -1;
        size_t off = 0;
        while (off + 8 <= c->caplen) {   /* keep only whole boxes before any fragment */
            const uint8_t *b = c->cap + off;
            if (!memcmp(b + 4, "moof", 4) || !memcmp(b + 4, "styp", 4))
                break;
            uint64_t s = box_size(b, c->caplen - off);
            if (!s)
                return ss_fail(err, SS_EINTERNAL, "mp4 muxer wrote a malformed box");
            off += (size_t)s;
        }
        if (off != c->caplen)
            return ss_fail(err, SS_EINTERNAL, "mp4 muxer wrote a fragment with its header");
        if (media_write_file(c->dir, c->rel, "init.mp4", c->cap, off, c->init_quiet ? NULL : c->ev,
                             err))
            return -1;
        c->init_bytes = (int64_t)off;
        c->header_done = 1;
        c->caplen = 0;
    }
    if (flush(c, err) || add_seg(c, err))
        return -1;
    char name[32];
    snprintf(name, sizeof(name), "seg_%05d.m4s", c->seg_base + c->nsegs);
    if ((c->seg_base || c->off_mux) && rebase_fragment(c, c->cap, c->caplen))
        return ss_fail(err, SS_EINTERNAL, "mp4 fragment for %s: no tfdt to move", c->rel);
    pkg_seg *sg = &c->segs[c->nsegs];
    sg->start = c->seg_start + c->off_mux;
    sg->duration = next_start - c->seg_start;
    sg->bytes = (int64_t)c->caplen;
    sg->iframe_end = cmaf_first_sample_end(c->cap, c->caplen);
    if (sg->iframe_end <= 0)
        return ss_fail(err, SS_EINTERNAL, "mp4 fragment for %s has no first sample", c->rel);
    if (media_write_file(c->dir, c->rel, name, c->cap, c->caplen, c->ev, err))
        return -1;
    c->bytes += sg->bytes;
    c->nsegs++;
    c->caplen = 0;
    c->open_seg = 0;
    return 0;
}

int cmaf_write(cmaf_out *c, AVPacket *pkt, int cut_here, ss_err *err)
{
    AVStream *st = c->oc->streams[0];
    if (c->off_enc) {
        if (pkt->pts != AV_NOPTS_VALUE)
            pkt->pts -= c->off_enc;
        if (pkt->dts != AV_NOPTS_VALUE)
            pkt->dts -= c->off_enc;
    }
    av_packet_rescale_ts(pkt, c->enc_tb, st->time_base);
    pkt->stream_index = 0;
    int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    if (c->open_seg && cut_here && cut(c, pts, err))
        return -1;
    if (!c->open_seg) {
        c->open_seg = 1;
        c->seg_start = c->nsegs == 0 && pts < 0 ? 0 : pts;
    }
    if (pts != AV_NOPTS_VALUE) {
        int64_t e = pts + (pkt->duration > 0 ? pkt->duration : 0);
        if (c->end == AV_NOPTS_VALUE || e > c->end)
            c->end = e;
    }
    c->packets++;
    int r = av_write_frame(c->oc, pkt);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "mp4 muxer for %s: %s", c->rel, e);
    }
    return 0;
}

int cmaf_finish(cmaf_out *c, int64_t end, ss_err *err)
{
    AVStream *st = c->oc->streams[0];
    int64_t e = end != AV_NOPTS_VALUE ? av_rescale_q(end - c->off_enc, c->enc_tb, st->time_base)
                                      : c->end;
    if (e == AV_NOPTS_VALUE || e < c->seg_start)
        e = c->seg_start;
    if (cut(c, e, err))
        return -1;
    int r = av_write_trailer(c->oc);
    if (r < 0) {
        char m[128];
        media_averr(r, m, sizeof(m));
        return ss_fail(err, SS_EINTERNAL, "mp4 muxer for %s: %s", c->rel, m);
    }
    return 0;
}

void cmaf_track(const cmaf_out *c, pkg_track *t)
{
    ss_strlcpy(t->name, c->rel, sizeof(t->name));
    t->timescale = c->timescale;
    t->init_bytes = c->init_bytes;
    t->segs = c->segs;
    t->nsegs = c->nsegs;
}

int64_t cmaf_bytes(const cmaf_out *c)
{
    return c->bytes;
}

int64_t cmaf_packets(const cmaf_out *c)
{
    return c->packets;
}

void cmaf_free(cmaf_out **cp)
{
    cmaf_out *c = *cp;
    if (!c)
        return;
    if (c->oc) {
        if (c->oc->pb) {
            av_freep(&c->oc->pb->buffer);
            avio_context_free(&c->oc->pb);
        }
        avformat_free_context(c->oc);
    }
    free(c->cap);
    free(c->segs);
    free(c);
    *cp = NULL;
}
