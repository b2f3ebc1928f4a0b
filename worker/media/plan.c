/* plan.c — ladder, caps, CFR rate, keyframe grid, level and codec string
 * (see plan.h; the rules in words are in docs/MEDIA.md). Pure functions. */
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const int std_heights[] = { 240, 360, 480, 720, 1080, 1440, 2160 };

int plan_even(double x)
{
    long v = lround(x / 2.0) * 2;
    return v < 2 ? 2 : (int)v;
}

void plan_display_size(const plan_src *s, int *dw, int *dh)
{
    double w = s->width;
    if (s->sar_num > 0 && s->sar_den > 0)
        w = w * s->sar_num / s->sar_den;
    int iw = (int)lround(w), ih = s->height;
    if (s->rotation == 90 || s->rotation == 270) {
        *dw = ih;
        *dh = iw;
    } else {
        *dw = iw;
        *dh = ih;
    }
}

int plan_maxrate_kbps(int w, int h, double fps)
{
    /* 6000 kbps for 1080p at 30 fps, scaled by pixels^0.75 and sqrt(fps/30)
     * (clamped to 0.5..1.5), rounded to 50 kbps, at least 200. */
    double px = (double)w * h;
    double f = fps > 0 ? sqrt(fps / 30.0) : 1.0;
    if (f < 0.5)
        f = 0.5;
    if (f > 1.5)
        f = 1.5;
    double k = 6000.0 * pow(px / (1920.0 * 1080.0), 0.75) * f;
    long r = lround(k / 50.0) * 50;
    return r < 200 ? 200 : (int)r;
}

static const struct {
    int idc;
    long max_mbps, max_fs, max_br; /* MB/s, MBs per frame, kbit/s (base) */
} levels[] = {
    { 30, 40500, 1620, 10000 },   { 31, 108000, 3600, 14000 },  { 32, 216000, 5120, 20000 },
    { 40, 245760, 8192, 20000 },  { 41, 245760, 8192, 50000 },  { 42, 522240, 8704, 50000 },
    { 50, 589824, 22080, 135000 }, { 51, 983040, 36864, 240000 }, { 52, 2073600, 36864, 240000 },
};

int plan_h264_level(int w, int h, double fps, int maxrate_kbps)
{
    long mbw = (w + 15) / 16, mbh = (h + 15) / 16, fs = mbw * mbh;
    double mbps = fs * (fps > 0 ? fps : 30.0);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        double side = sqrt(levels[i].max_fs * 8.0);
        if (fs <= levels[i].max_fs && mbw <= side && mbh <= side && mbps <= levels[i].max_mbps &&
            maxrate_kbps <= levels[i].max_br * 5 / 4)
            return levels[i].idc;
    }
    return 52;
}

void plan_fps(double avg, double r, int *num, int *den)
{
    static const struct { int n, d; } common[] = {
        { 6, 1 }, { 15, 2 }, { 8, 1 }, { 10, 1 }, { 12, 1 }, { 25, 2 }, { 15, 1 }, { 20, 1 },
        { 24000, 1001 }, { 24, 1 }, { 25, 1 }, { 30000, 1001 }, { 30, 1 }, { 48, 1 },
        { 50, 1 }, { 60000, 1001 }, { 60, 1 },
    };
    double f = avg > 0 && isfinite(avg) ? avg : r;
    if (!(f > 0) || !isfinite(f) || f > 1000)
        f = 25.0;
    while (f > 60.0 * 1.02)
        f /= 2.0;
    double best = 1e9;
    int bn = 0, bd = 1;
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        double c = (double)common[i].n / common[i].d;
        double rel = fabs(c - f) / c;
        if (rel < best) {
            best = rel;
            bn = common[i].n;
            bd = common[i].d;
        }
    }
    if (best <= 0.02) {
        *num = bn;
        *den = bd;
        return;
    }
    long n = lround(f);
    *num = n < 1 ? 1 : (int)n;
    *den = 1;
}

void plan_segment_q(double seconds, int *num, int *den)
{
    long ms = lround(seconds * 1000.0);
    if (ms < 1)
        ms = 1;
    long a = ms, b = 1000;
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    *num = (int)(ms / a);
    *den = (int)(1000 / a);
}

int64_t plan_boundary_frame(int64_t k, int fps_num, int fps_den, int seg_num, int seg_den)
{
    /* smallest n with n * fps_den / fps_num >= k * seg_num / seg_den
     *   <=> n >= k * seg_num * fps_num / (seg_den * fps_den) */
    int64_t p = k * (int64_t)seg_num * fps_num, q = (int64_t)seg_den * fps_den;
    if (p <= 0)
        return 0;
    return (p + q - 1) / q;
}

int plan_keyint(int fps_num, int fps_den, int seg_num, int seg_den)
{
    int64_t v = plan_boundary_frame(1, fps_num, fps_den, seg_num, seg_den);
    return v < 1 ? 1 : (int)v;
}

static void rung_fill(plan_rung *r, int w, int h, double fps, const media_rung_req *req,
                      const media_opts *o)
{
    memset(r, 0, sizeof(*r));
    r->width = w;
    r->height = h;
    snprintf(r->name, sizeof(r->name), "%dp", h);
    r->maxrate_kbps = req && req->bitrate_kbps > 0 ? req->bitrate_kbps : plan_maxrate_kbps(w, h, fps);
    r->bufsize_kbits = 2 * r->maxrate_kbps;
    r->target_kbps = req && req->bitrate_kbps > 0 ? req->bitrate_kbps
                                                 : (int)lround(r->maxrate_kbps * 0.7 / 50.0) * 50;
    r->crf = req && req->crf > 0 ? req->crf : o->crf;
    r->level = plan_h264_level(w, h, fps, r->maxrate_kbps);
}

void plan_av1_rung(const plan_rung *h, plan_rung *out)
{
    *out = *h;
    snprintf(out->name, sizeof(out->name), "av1-%.10s", h->name);
    if (h->av1_crf > 0) {
        out->target_kbps = h->av1_target_kbps;
        out->maxrate_kbps = h->av1_maxrate_kbps;
        out->bufsize_kbits = 2 * h->av1_maxrate_kbps;
    }
}

void plan_rung_make(plan_rung *r, const char *name, int w, int h, double fps, int maxrate_kbps,
                    int target_kbps, double crf_exact)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->width = w;
    r->height = h;
    r->maxrate_kbps = maxrate_kbps;
    r->bufsize_kbits = 2 * maxrate_kbps;
    r->target_kbps = target_kbps;
    r->crf_exact = round(crf_exact * 10) / 10;
    r->crf = (int)lround(crf_exact);
    r->level = plan_h264_level(w, h, fps, maxrate_kbps);
}

static int width_for(int h, int dw, int dh)
{
    return plan_even((double)h * dw / dh);
}

void plan_top_size(const plan_src *s, int *w, int *h)
{
    int dw, dh;
    plan_display_size(s, &dw, &dh);
    if (dw <= 0 || dh <= 0) {
        *w = *h = 2;
        return;
    }
    int top = dh & ~1;
    if (top < 2)
        top = 2;
    *h = top;
    *w = width_for(top, dw, dh);
}

static void sort_rungs(plan_ladder *l)
{
    for (int i = 1; i < l->n; i++)
        for (int j = i; j > 0 && l->rungs[j].height < l->rungs[j - 1].height; j--) {
            plan_rung t = l->rungs[j];
            l->rungs[j] = l->rungs[j - 1];
            l->rungs[j - 1] = t;
        }
}

static void note(plan_ladder *l, const char *msg)
{
    size_t used = strlen(l->notes);
    snprintf(l->notes + used, sizeof(l->notes) - used, "%s%s", used ? "; " : "", msg);
}

int plan_ladder_make(const plan_src *s, const media_opts *o, plan_ladder *out)
{
    memset(out, 0, sizeof(*out));
    if (s->width <= 0 || s->height <= 0)
        return -1;
    int dw, dh;
    plan_display_size(s, &dw, &dh);
    if (dw <= 0 || dh <= 0)
        return -1;
    int top = dh & ~1;
    if (top < 2)
        top = 2;

    if (o->ladder == MEDIA_LADDER_EXPLICIT && o->nrungs > 0) {
        for (int i = 0; i < o->nrungs && i < MEDIA_MAX_RUNGS; i++) {
            const media_rung_req *q = &o->rungs[i];
            if (q->height <= 0)
                continue;
            int h = q->height & ~1;
            if (h > top) {
                char m[96];
                snprintf(m, sizeof(m), "rung %dp dropped: above the source height %d", q->height, dh);
                note(out, m);
                continue;
            }
            int w = q->width > 0 ? (q->width & ~1) : width_for(h, dw, dh);
            int dup = 0;
            for (int j = 0; j < out->n; j++)
                if (out->rungs[j].height == h)
                    dup = 1;
            if (dup) {
                char m[64];
                snprintf(m, sizeof(m), "rung %dp dropped: given twice", h);
                note(out, m);
                continue;
            }
            rung_fill(&out->rungs[out->n++], w, h, s->fps, q, o);
        }
        if (out->n == 0) {
            char m[80];
            snprintf(m, sizeof(m), "no rung fits: one rung at the source height %dp", top);
            note(out, m);
            rung_fill(&out->rungs[out->n++], width_for(top, dw, dh), top, s->fps, NULL, o);
        }
        sort_rungs(out);
        return out->n;
    }

    /* auto (and per-title until it is planned from measurements): the top
     * rung is the source's display height; below it the largest standard
     * height <= top/1.4 (about half the pixels), then the largest standard
     * height <= that/1.9 (about a quarter of those), and from 1440p up a
     * fourth the same way; nothing below 240 except a single rung for a
     * source that is itself below 240. */
    int hs[4], n = 0;
    hs[n++] = top;
    int maxn = top >= 1440 ? 4 : 3;
    double lim = top / 1.4;
    while (n < maxn) {
        int pick = 0;
        for (size_t i = 0; i < sizeof(std_heights) / sizeof(std_heights[0]); i++)
            if (std_heights[i] <= lim && std_heights[i] < hs[n - 1])
                pick = std_heights[i];
        if (!pick)
            break;
        hs[n++] = pick;
        lim = pick / 1.9;
    }
    for (int i = n - 1; i >= 0; i--)
        rung_fill(&out->rungs[out->n++], width_for(hs[i], dw, dh), hs[i], s->fps, NULL, o);
    return out->n;
}

int plan_avc_codec_string(const uint8_t *x, size_t len, char *out, size_t outlen)
{
    const uint8_t *sps = NULL;
    if (len >= 4 && x[0] == 1) {
        /* avcC: version, profile, compat, level, ... */
        sps = x + 1;
    } else {
        for (size_t i = 0; i + 4 < len; i++) {
            if (x[i] == 0 && x[i + 1] == 0 && x[i + 2] == 1) {
                if ((x[i + 3] & 0x1f) == 7 && i + 6 < len) {
                    sps = x + i + 4;
                    break;
                }
                i += 2;
            }
        }
    }
    if (!sps)
        return -1;
    snprintf(out, outlen, "avc1.%02x%02x%02x", sps[0], sps[1], sps[2]);
    return 0;
}

void plan_orientation(const int32_t *m, int *rotation, int *mirror)
{
    *rotation = *mirror = 0;
    if (!m)
        return;
    /* x' = a x + c y, y' = b x + d y (a = m[0], b = m[1], c = m[3], d = m[4]),
     * y pointing down; the larger pair decides the right angle */
    double a = m[0], b = m[1], c = m[3], d = m[4];
    if (fabs(a) + fabs(d) >= fabs(b) + fabs(c)) {
        if (a >= 0 && d >= 0)
            return;
        if (a < 0 && d < 0)
            *rotation = 180;
        else if (a < 0)
            *mirror = 1;                      /* hflip */
        else
            *rotation = 180, *mirror = 1;     /* vflip */
    } else if (b >= 0 && c < 0) {
        *rotation = 90;
    } else if (b < 0 && c >= 0) {
        *rotation = 270;
    } else if (b >= 0) {
        *rotation = 90, *mirror = 1;          /* transpose */
    } else {
        *rotation = 270, *mirror = 1;         /* anti-transpose */
    }
}

plan_hdr plan_hdr_of(int color_trc)
{
    return color_trc == 16 ? PLAN_HDR_PQ : color_trc == 18 ? PLAN_HDR_HLG : PLAN_HDR_NONE;
}

const char *plan_hdr_name(plan_hdr h)
{
    return h == PLAN_HDR_PQ ? "pq" : h == PLAN_HDR_HLG ? "hlg" : NULL;
}

int plan_prefilter(const plan_pre *p, char *out, size_t outlen)
{
    size_t n = 0;
    int r;
#define ADD(...)                                                   \
    do {                                                           \
        r = snprintf(out + n, outlen - n, __VA_ARGS__);            \
        if (r < 0 || (size_t)r >= outlen - n)                      \
            return -1;                                             \
        n += (size_t)r;                                            \
    } while (0)
    if (!outlen)
        return -1;
    out[0] = '\0';
    if (p->deinterlace)
        ADD("bwdif=mode=send_frame:parity=auto:deint=interlaced,");
    if (p->fps_num > 0)
        ADD("fps=fps=%d/%d:start_time=%.6f:round=near,", p->fps_num, p->fps_den, p->start);
    if (p->hdr != PLAN_HDR_NONE) {
        /* to linear light at 100 nits, BT.709 primaries, Hable's curve
         * (no desaturation), then BT.709 transfer and matrix, limited range */
        ADD("zscale=tin=%s:pin=%s:min=%s:rin=tv:t=linear:npl=100,format=gbrpf32le,"
            "zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,",
            p->hdr == PLAN_HDR_PQ ? "smpte2084" : "arib-std-b67",
            p->primaries == 1 ? "bt709" : "2020",
            p->matrix == 1 ? "bt709" : p->matrix == 10 ? "2020_cl" : "2020_ncl");
    }
    static const char *const turn[4][2] = {
        { "", "hflip," },
        { "transpose=clock,", "transpose=cclock_flip," },
        { "hflip,vflip,", "vflip," },
        { "transpose=cclock,", "transpose=clock_flip," },
    };
    int q = (p->rotation / 90) & 3;
    ADD("%s", turn[q][p->mirror ? 1 : 0]);
    ADD("format=yuv420p");
#undef ADD
    return 0;
}

/* ---- AV1 sequence header (AV1 spec 5.3 and 5.5) ---- */

typedef struct bitr {
    const uint8_t *p;
    size_t n, pos;   /* bits */
    int bad;         /* read past the end */
} bitr;

static uint32_t bits(bitr *r, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        if (r->pos >= r->n * 8) {
            r->bad = 1;
            return 0;
        }
        v = v << 1 | ((r->p[r->pos >> 3] >> (7 - (r->pos & 7))) & 1u);
        r->pos++;
    }
    return v;
}

static void uvlc(bitr *r)
{
    int z = 0;
    while (!r->bad && !bits(r, 1))
        if (++z >= 32) {
            r->bad = 1;
            return;
        }
    bits(r, z);
}

static int av1_seq(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    bitr r = { p, n, 0, 0 };
    int profile = (int)bits(&r, 3);
    bits(&r, 1);                                  /* still_picture */
    int reduced = (int)bits(&r, 1), level = 0, tier = 0;
    if (reduced) {
        level = (int)bits(&r, 5);
    } else {
        int dm = 0, bdl = 0;
        if (bits(&r, 1)) {                        /* timing_info_present_flag */
            bits(&r, 32);
            bits(&r, 32);
            if (bits(&r, 1))
                uvlc(&r);
            dm = (int)bits(&r, 1);
            if (dm) {
                bdl = (int)bits(&r, 5) + 1;
                bits(&r, 32);
                bits(&r, 10);
            }
        }
        int idd = (int)bits(&r, 1);
        int nop = (int)bits(&r, 5) + 1;
        for (int i = 0; i < nop && !r.bad; i++) {
            bits(&r, 12);
            int lv = (int)bits(&r, 5), t = lv > 7 ? (int)bits(&r, 1) : 0;
            if (i == 0)
                level = lv, tier = t;
            if (dm && bits(&r, 1)) {
                bits(&r, bdl);
                bits(&r, bdl);
                bits(&r, 1);
            }
            if (idd && bits(&r, 1))
                bits(&r, 4);
        }
    }
    int wb = (int)bits(&r, 4) + 1, hb = (int)bits(&r, 4) + 1;
    bits(&r, wb);
    bits(&r, hb);
    if (!reduced && bits(&r, 1)) {                /* frame_id_numbers_present_flag */
        bits(&r, 4);
        bits(&r, 3);
    }
    bits(&r, 3);                                  /* 128x128 SB, filter intra, intra edge */
    if (!reduced) {
        bits(&r, 4);                              /* interintra, masked, warped, dual filter */
        int order_hint = (int)bits(&r, 1);
        if (order_hint)
            bits(&r, 2);                          /* jnt_comp, ref_frame_mvs */
        int force_sct = bits(&r, 1) ? 2 : (int)bits(&r, 1);
        if (force_sct > 0 && !bits(&r, 1))        /* seq_choose_integer_mv */
            bits(&r, 1);
        if (order_hint)
            bits(&r, 3);
    }
    bits(&r, 3);                                  /* superres, cdef, restoration */
    int high = (int)bits(&r, 1);
    int depth = profile == 2 && high ? (bits(&r, 1) ? 12 : 10) : high ? 10 : 8;
    if (r.bad || profile > 2)
        return -1;
    snprintf(out, outlen, "av01.%d.%02d%c.%02d", profile, level, tier ? 'H' : 'M', depth);
    return 0;
}

int plan_av1_codec_string(const uint8_t *x, size_t len, char *out, size_t outlen)
{
    size_t i = 0;
    if (len >= 4 && x[0] == 0x81)                 /* av1C: marker 1, version 1 */
        i = 4;
    while (i < len) {
        uint8_t h = x[i++];
        int type = (h >> 3) & 15, ext = (h >> 2) & 1, has_size = (h >> 1) & 1;
        if (h & 0x80)                             /* forbidden bit */
            return -1;
        i += (size_t)ext;
        size_t n = len > i ? len - i : 0;
        if (has_size) {
            n = 0;
            for (int k = 0;; k++) {
                if (i >= len || k >= 8)
                    return -1;
                uint8_t c = x[i++];
                n |= (size_t)(c & 0x7f) << (7 * k);
                if (!(c & 0x80))
                    break;
            }
        }
        if (i > len || n > len - i)
            return -1;
        if (type == 1)                            /* OBU_SEQUENCE_HEADER */
            return av1_seq(x + i, n, out, outlen);
        i += n;
    }
    return -1;
}

int plan_chunk_segments(double chunk_seconds, int seg_num, int seg_den)
{
    double seg = (double)seg_num / seg_den;
    long n = lround(chunk_seconds / seg);
    return n < 1 ? 1 : n > 100000 ? 100000 : (int)n;
}

int plan_chunk_len(int k, int per_chunk)
{
    if (per_chunk <= PLAN_FIRST_CHUNK_SEGMENTS)
        return per_chunk;
    int64_t n = PLAN_FIRST_CHUNK_SEGMENTS;
    for (int i = 0; i < k && n < per_chunk; i++)
        n *= 2;
    return n < per_chunk ? (int)n : per_chunk;
}

int plan_chunks(double duration, int fps_num, int fps_den, int seg_num, int seg_den, int per_chunk,
                int min_chunks, int ramp, plan_chunk *out)
{
    if (duration <= 0 || per_chunk < 1 || fps_num <= 0 || fps_den <= 0 || seg_num <= 0 ||
        seg_den <= 0)
        return 0;
    /* segments the announced length fills (a part segment counts) */
    int64_t frames = (int64_t)ceil(duration * fps_num / fps_den - 1e-6);
    int64_t nseg = 0;
    while (plan_boundary_frame(nseg, fps_num, fps_den, seg_num, seg_den) < frames)
        nseg++;
    /* whether to split is decided on regular chunks; the ramp at the start
     * only cuts the first of them finer */
    int64_t n = (nseg + per_chunk - 1) / per_chunk;
    if (n < min_chunks || n < 2)
        return 0;
    for (;;) {
        n = 0;
        for (int64_t seg = 0; seg < nseg; n++)
            seg += ramp ? plan_chunk_len((int)n, per_chunk) : per_chunk;
        if (n <= PLAN_MAX_CHUNKS)
            break;
        per_chunk *= 2;
    }
    int64_t seg = 0;
    for (int64_t k = 0; k < n; k++) {
        out[k].seg0 = seg;
        out[k].f0 = plan_boundary_frame(seg, fps_num, fps_den, seg_num, seg_den);
        seg += ramp ? plan_chunk_len((int)k, per_chunk) : per_chunk;
        out[k].f1 = k == n - 1 ? -1 : plan_boundary_frame(seg, fps_num, fps_den, seg_num, seg_den);
    }
    return (int)n;
}

int plan_budget_tokens(int threads, int ncpus)
{
    /* a budget of every CPU the worker may use (threads 2 on 2 cores)
     * only throttles it: that worker owns its CPUs and runs as threads 0 */
    if (ncpus < 1)
        ncpus = 1;
    return threads > 0 && threads < ncpus ? threads : 0;
}

void plan_thread_budget(const plan_ladder *l, int total, int ncpus, plan_threads *out)
{
    memset(out, 0, sizeof(*out));
    if (ncpus < 1)
        ncpus = 1;
    total = plan_budget_tokens(total, ncpus);
    int gated = total > 0;
    if (!gated)
        total = ncpus;
    double px = 0;
    for (int i = 0; i < l->n; i++)
        px += (double)l->rungs[i].width * l->rungs[i].height;
    for (int i = 0; i < l->n && i < MEDIA_MAX_RUNGS; i++) {
        double share = px > 0 ? (double)l->rungs[i].width * l->rungs[i].height / px : 1;
        int t = (int)ceil(total * share);
        out->x264[i] = t < 1 ? 1 : t > total ? total : t;
        /* libx264's frame threads wait on each other's rows: two of them
         * kept about 1.5 cores busy (measured: two local encodes at once,
         * threads 2 against threads 1, got CPU 1.6:1 when the top rung
         * held 2 tokens per frame, 2.2:1 with 1), so half, rounded up */
        out->weight[i] = (out->x264[i] + 1) / 2;
    }
    if (gated) {
        out->tokens = total;
        /* decoder frame threads run outside the tokens: one on a small
         * budget, a few for a big one (a 4K HEVC source) */
        out->decoder = total >= 8 ? total / 4 : 1;
    }
}
