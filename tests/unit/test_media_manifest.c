/* Unit tests for worker/media/manifest.c: HLS media, I-frame, subtitle and
 * master playlists and the DASH MPD from fixed measured values, plus the
 * trun parser that finds the end of a fragment's IDR sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "manifest.h"
#include "media.h"
#include "mediai.h"
#include "util.h"

/* 29.97 fps video at timescale 30000: segments of 120, 120, 119 frames
 * (4.004, 4.004, 3.9706 s) and a short tail of 31 frames (1.0343 s). */
static pkg_seg vsegs360[] = {
    { 0, 120120, 400000, 30000 },
    { 120120, 120120, 600000, 41000 },   /* peak: 600000*8/4.004 = 1198801.2 */
    { 240240, 119119, 500000, 35000 },
    { 359359, 31031, 100000, 20000 },
};
static pkg_seg vsegs720[] = {
    { 0, 120120, 1000000, 90000 },
    { 120120, 120120, 1500000, 95000 },
    { 240240, 119119, 2100000, 99000 },  /* peak: 2100000*8/3.97063 = 4231063.1 */
    { 359359, 31031, 200000, 60000 },
};
/* AAC at 48 kHz: 188, 188, 186, 49 frames of 1024 samples */
static pkg_seg asegs[] = {
    { 0, 192512, 64000, 0 },   /* 4.0107 s -> 127659.6 b/s */
    { 192512, 192512, 65000, 0 },   /* peak: 129654.1 */
    { 385024, 190464, 63000, 0 },
    { 575488, 50176, 16000, 0 },
};

static pkg_track video[2], audio;
static pkg_text text;
static pkg_set set;

static int setup(void **st)
{
    (void)st;
    memset(video, 0, sizeof(video));
    const struct { const char *n; int w, h; pkg_seg *s; const char *c; } v[] = {
        { "360p", 640, 360, vsegs360, "avc1.64001e" }, { "720p", 1280, 720, vsegs720, "avc1.64001f" },
    };
    for (int i = 0; i < 2; i++) {
        snprintf(video[i].name, sizeof(video[i].name), "%s", v[i].n);
        video[i].width = v[i].w;
        video[i].height = v[i].h;
        video[i].fps_num = 30000;
        video[i].fps_den = 1001;
        video[i].timescale = 30000;
        snprintf(video[i].codecs, sizeof(video[i].codecs), "%s", v[i].c);
        video[i].segs = v[i].s;
        video[i].nsegs = 4;
    }
    memset(&audio, 0, sizeof(audio));
    snprintf(audio.name, sizeof(audio.name), "audio");
    audio.is_audio = 1;
    audio.channels = 2;
    audio.sample_rate = 48000;
    audio.timescale = 48000;
    snprintf(audio.lang, sizeof(audio.lang), "eng");
    snprintf(audio.codecs, sizeof(audio.codecs), "mp4a.40.2");
    audio.segs = asegs;
    audio.nsegs = 4;
    memset(&text, 0, sizeof(text));
    snprintf(text.name, sizeof(text.name), "fr");
    snprintf(text.lang, sizeof(text.lang), "fre");
    snprintf(text.label, sizeof(text.label), "Fran\"cais");
    set = (pkg_set){ video, 2, &audio, &text, 1, 4.0, 13.0130, 1, 0 };
    return 0;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_rates(void **st)
{
    (void)st;
    assert_int_equal(pkg_peak_bps(&video[0]), 1198802);
    assert_int_equal(pkg_peak_bps(&video[1]), 4231064);
    assert_int_equal(pkg_peak_bps(&audio), 129655);
    /* avg: 1600000 bytes over 13.013 s */
    assert_int_equal(pkg_avg_bps(&video[0]), 983632);
    /* 20000*8/1.034: the tail's EXTINF (1.034) is shorter than its exact
     * 1.03437 s, and a player reads the EXTINF */
    assert_int_equal(pkg_iframe_peak_bps(&video[0]), 154739);
    assert_true(pkg_seg_seconds(&video[0], 2) > 3.9706 && pkg_seg_seconds(&video[0], 2) < 3.9707);
}

static void test_media_playlist(void **st)
{
    (void)st;
    char *m = pkg_hls_media(&video[0]);
    assert_non_null(m);
    assert_true(!strncmp(m, "#EXTM3U\n#EXT-X-VERSION:7\n", 25));
    /* longest EXTINF is 4.004: target duration rounds up to 5 */
    assert_non_null(strstr(m, "#EXT-X-TARGETDURATION:5\n"));
    assert_non_null(strstr(m, "#EXT-X-PLAYLIST-TYPE:VOD\n"));
    assert_non_null(strstr(m, "#EXT-X-INDEPENDENT-SEGMENTS\n"));
    assert_non_null(strstr(m, "#EXT-X-MAP:URI=\"init.mp4\"\n"));
    assert_non_null(strstr(m, "#EXTINF:4.004,\nseg_00000.m4s\n"));
    assert_non_null(strstr(m, "#EXTINF:3.971,\nseg_00002.m4s\n"));
    assert_non_null(strstr(m, "#EXTINF:1.034,\nseg_00003.m4s\n#EXT-X-ENDLIST\n"));
    assert_int_equal(count(m, "#EXTINF:"), 4);
    assert_null(strstr(m, "I-FRAMES-ONLY"));
    free(m);

    /* exact 4.000 s segments: target duration 4, not 5 */
    pkg_seg even[] = { { 0, 100, 10, 1 }, { 100, 100, 10, 1 } };
    pkg_track t = video[0];
    t.timescale = 25;
    t.segs = even;
    t.nsegs = 2;
    assert_int_equal(pkg_target_duration(&t), 4);
    /* audio 4.011 s: 5 */
    assert_int_equal(pkg_target_duration(&audio), 5);
}

static void test_iframe_playlist(void **st)
{
    (void)st;
    char *m = pkg_hls_iframes(&video[1]);
    assert_non_null(m);
    assert_non_null(strstr(m, "#EXT-X-I-FRAMES-ONLY\n"));
    assert_non_null(strstr(m, "#EXT-X-MAP:URI=\"init.mp4\"\n"));
    assert_non_null(strstr(m, "#EXTINF:4.004,\n#EXT-X-BYTERANGE:90000@0\nseg_00000.m4s\n"));
    assert_non_null(strstr(m, "#EXT-X-BYTERANGE:60000@0\nseg_00003.m4s\n#EXT-X-ENDLIST"));
    free(m);
}

static void test_master(void **st)
{
    (void)st;
    char *m = pkg_hls_master(&set);
    assert_non_null(m);
    assert_non_null(strstr(m, "#EXT-X-INDEPENDENT-SEGMENTS\n"));
    assert_non_null(strstr(m, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\","
                              "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/playlist.m3u8\"\n"));
    /* quotes in a NAME are not allowed: replaced */
    assert_non_null(strstr(m, "TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Fran'cais\",LANGUAGE=\"fr\""));
    assert_non_null(strstr(m, "URI=\"subtitles/fr.m3u8\""));
    /* BANDWIDTH = peak video + peak audio; AVERAGE = average video + average audio */
    char want[512];
    snprintf(want, sizeof(want),
             "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%lld,CODECS=\"avc1.64001f,mp4a.40.2\","
             "RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"audio\",SUBTITLES=\"subs\"\n720p/playlist.m3u8\n",
             4231064 + 129655, (long long)(pkg_avg_bps(&video[1]) + pkg_avg_bps(&audio)));
    assert_non_null(strstr(m, want));
    assert_non_null(strstr(m, "RESOLUTION=640x360"));
    assert_int_equal(count(m, "#EXT-X-STREAM-INF:"), 2);
    assert_non_null(strstr(m, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=154739,CODECS=\"avc1.64001e\","
                              "RESOLUTION=640x360,URI=\"360p/iframes.m3u8\"\n"));
    /* the smallest rung is listed first */
    assert_true(strstr(m, "360p/playlist.m3u8") < strstr(m, "720p/playlist.m3u8"));
    free(m);

    /* no audio: no AUDIO group, CODECS video only */
    pkg_set noa = { video, 2, NULL, NULL, 0, 4.0, 13.013, 0, 0 };
    m = pkg_hls_master(&noa);
    assert_null(strstr(m, "AUDIO"));
    assert_non_null(strstr(m, "BANDWIDTH=4231064,"));
    assert_non_null(strstr(m, "CODECS=\"avc1.64001f\",RESOLUTION"));
    free(m);
}

static void test_text_playlist(void **st)
{
    (void)st;
    char *m = pkg_hls_text(&text, 13.013);
    assert_non_null(m);
    assert_non_null(strstr(m, "#EXT-X-TARGETDURATION:14\n"));
    assert_non_null(strstr(m, "#EXTINF:13.013,\nfr.vtt\n#EXT-X-ENDLIST\n"));
    free(m);
}

static void test_mpd(void **st)
{
    (void)st;
    char *m = pkg_dash_mpd(&set);
    assert_non_null(m);
    assert_non_null(strstr(m, "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\""));
    assert_non_null(strstr(m, "mediaPresentationDuration=\"PT13.013S\""));
    assert_non_null(strstr(m, "minBufferTime=\"PT4S\""));
    assert_non_null(strstr(m, "segmentAlignment=\"true\" startWithSAP=\"1\""));
    assert_non_null(strstr(m, "<Representation id=\"720p\" bandwidth=\"4231064\" width=\"1280\" "
                              "height=\"720\" frameRate=\"30000/1001\" sar=\"1:1\" codecs=\"avc1.64001f\">"));
    assert_non_null(strstr(m, "media=\"$RepresentationID$/seg_$Number%05d$.m4s\" startNumber=\"0\""));
    /* two equal segments folded with r, then the 119- and 31-frame ones */
    assert_non_null(strstr(m, "<S t=\"0\" d=\"120120\" r=\"1\"/>\n"
                              "            <S d=\"119119\"/>\n            <S d=\"31031\"/>\n"));
    assert_int_equal(count(m, "<AdaptationSet"), 3);
    assert_non_null(strstr(m, "contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" "
                              "startWithSAP=\"1\" lang=\"en\""));
    assert_non_null(strstr(m, "audio_channel_configuration:2011\" value=\"2\""));
    assert_non_null(strstr(m, "<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>"));
    assert_non_null(strstr(m, "audioSamplingRate=\"48000\""));
    assert_non_null(strstr(m, "<S t=\"0\" d=\"192512\" r=\"1\"/>"));
    assert_non_null(strstr(m, "mimeType=\"text/vtt\" lang=\"fr\""));
    assert_non_null(strstr(m, "<BaseURL>subtitles/fr.vtt</BaseURL>"));
    assert_non_null(strstr(m, "</Period>\n</MPD>\n"));
    free(m);
}


/* Three source tracks (English default, French titled commentary, German
 * description) plus a 5.1 rendition of the English one; H.264 and AV1. */
static void test_multi(void **st)
{
    (void)st;
    pkg_track au[4], vv[4];
    const struct { const char *n, *lang, *label, *role; int ch, def; } a[] = {
        { "audio", "eng", "", "", 2, 1 },
        { "audio_1", "fre", "Commentaire \"réalisateur\"", "commentary", 2, 0 },
        { "audio_2", "deu", "", "description", 2, 0 },
        { "audio_51", "eng", "", "", 6, 1 },
    };
    for (int i = 0; i < 4; i++) {
        au[i] = audio;
        snprintf(au[i].name, sizeof(au[i].name), "%s", a[i].n);
        snprintf(au[i].lang, sizeof(au[i].lang), "%s", a[i].lang);
        snprintf(au[i].label, sizeof(au[i].label), "%s", a[i].label);
        snprintf(au[i].role, sizeof(au[i].role), "%s", a[i].role);
        au[i].channels = a[i].ch;
        au[i].is_default = a[i].def;
    }
    au[3].segs = vsegs360;   /* a bigger 5.1 track: its group's BANDWIDTH */
    au[3].timescale = 30000;
    vv[0] = video[0];
    vv[1] = video[1];
    vv[2] = video[0];
    vv[3] = video[1];
    snprintf(vv[2].name, sizeof(vv[2].name), "av1-360p");
    snprintf(vv[3].name, sizeof(vv[3].name), "av1-720p");
    snprintf(vv[2].codecs, sizeof(vv[2].codecs), "av01.0.01M.08");
    snprintf(vv[3].codecs, sizeof(vv[3].codecs), "av01.0.05M.08");
    pkg_set s = { vv, 4, au, NULL, 0, 4.0, 13.013, 4, 0 };
    char *m = pkg_hls_master(&s);
    assert_non_null(m);
    assert_non_null(strstr(m, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\","
                              "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/playlist.m3u8\"\n"));
    assert_non_null(strstr(m, "GROUP-ID=\"audio\",NAME=\"Commentaire 'réalisateur'\",LANGUAGE=\"fr\","
                              "DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio_1/playlist.m3u8\"\n"));
    assert_non_null(strstr(m, "GROUP-ID=\"audio\",NAME=\"German\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=YES,"
                              "CHARACTERISTICS=\"public.accessibility.describes-video\",CHANNELS=\"2\""));
    assert_non_null(strstr(m, "GROUP-ID=\"audio-51\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,"
                              "AUTOSELECT=YES,CHANNELS=\"6\",URI=\"audio_51/playlist.m3u8\"\n"));
    /* every rung of every codec, once per audio group */
    assert_int_equal(count(m, "#EXT-X-STREAM-INF:"), 8);
    assert_int_equal(count(m, "AUDIO=\"audio\"\n"), 4);
    assert_int_equal(count(m, "AUDIO=\"audio-51\"\n"), 4);
    assert_int_equal(count(m, "CODECS=\"av01.0.05M.08,mp4a.40.2\""), 2);
    assert_int_equal(count(m, "#EXT-X-I-FRAME-STREAM-INF:"), 4);
    char want[256];
    snprintf(want, sizeof(want), "#EXT-X-STREAM-INF:BANDWIDTH=%lld,",
             (long long)(pkg_peak_bps(&vv[1]) + pkg_peak_bps(&au[3])));
    assert_non_null(strstr(m, want));
    free(m);

    m = pkg_dash_mpd(&s);
    assert_non_null(m);
    assert_int_equal(count(m, "contentType=\"video\""), 2);
    assert_int_equal(count(m, "contentType=\"audio\""), 4);
    assert_non_null(strstr(m, "<AdaptationSet id=\"1\" contentType=\"video\""));
    assert_non_null(strstr(m, "codecs=\"av01.0.05M.08\""));
    assert_non_null(strstr(m, "<AdaptationSet id=\"3\" contentType=\"audio\" mimeType=\"audio/mp4\" "
                              "segmentAlignment=\"true\" startWithSAP=\"1\" lang=\"fr\">"));
    assert_int_equal(count(m, "value=\"main\""), 2);
    assert_int_equal(count(m, "value=\"commentary\""), 1);
    assert_int_equal(count(m, "value=\"description\""), 1);
    assert_non_null(strstr(m, "audio_channel_configuration:2011\" value=\"6\""));
    /* the HLS NAME as the DASH Label (XML-escaped), between the channel
     * configuration and the Role as the MPD schema orders them */
    assert_non_null(strstr(m, "value=\"2\"/>\n      <Label>Commentaire &quot;réalisateur&quot;</Label>\n"
                              "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"commentary\"/>"));
    assert_non_null(strstr(m, "<Label>German</Label>"));
    /* AV1 preferred where it decodes; H.264 keeps the default priority */
    assert_non_null(strstr(m, "maxHeight=\"720\" maxFrameRate=\"30000/1001\" selectionPriority=\"2\">\n"
                              "      <Representation id=\"av1-360p\""));
    assert_int_equal(count(m, "selectionPriority=\"1\""), 1);
    free(m);

    /* audio only: one variant per group, its default rendition */
    pkg_set ao = { NULL, 0, au, NULL, 0, 4.0, 13.013, 4, 0 };
    m = pkg_hls_master(&ao);
    assert_int_equal(count(m, "#EXT-X-STREAM-INF:"), 2);
    assert_non_null(strstr(m, "CODECS=\"mp4a.40.2\",AUDIO=\"audio\"\naudio/playlist.m3u8\n"));
    assert_non_null(strstr(m, "AUDIO=\"audio-51\"\naudio_51/playlist.m3u8\n"));
    assert_null(strstr(m, "I-FRAME"));
    free(m);
    m = pkg_dash_mpd(&ao);
    assert_null(strstr(m, "contentType=\"video\""));
    assert_non_null(strstr(m, "<AdaptationSet id=\"0\" contentType=\"audio\""));
    free(m);

    /* two untitled English tracks in one group get distinct names */
    au[1] = au[0];
    au[1].is_default = 0;
    snprintf(au[1].name, sizeof(au[1].name), "audio_1");
    pkg_set dup = { vv, 2, au, NULL, 0, 4.0, 13.013, 2, 0 };
    m = pkg_hls_master(&dup);
    assert_non_null(strstr(m, "NAME=\"English\""));
    assert_non_null(strstr(m, "NAME=\"English 2\",LANGUAGE=\"en\",DEFAULT=NO"));
    free(m);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_lang_tag(void **st)
{
    (void)st;
    char t[16];
    pkg_lang_tag("eng", t, sizeof(t));
    assert_string_equal(t, "en");
    pkg_lang_tag("GER", t, sizeof(t));
    assert_string_equal(t, "de");
    pkg_lang_tag("fra", t, sizeof(t));
    assert_string_equal(t, "fr");
    pkg_lang_tag("haw", t, sizeof(t));   /* no two-letter code: kept */
    assert_string_equal(t, "haw");
    pkg_lang_tag("pt-br", t, sizeof(t));
    assert_string_equal(t, "pt-BR");
    pkg_lang_tag("ZH-hant-tw", t, sizeof(t));
    assert_string_equal(t, "zh-Hant-TW");
    assert_string_equal(pkg_lang_name("eng"), "English");
    assert_string_equal(pkg_lang_name("fr-CA"), "French");
    assert_null(pkg_lang_name("haw"));
}

static void test_first_sample_end(void **st)
{
    (void)st;
    /* moof(8) { mfhd(16) traf(8) { tfhd(16) trun(12+4+4+4+2*8) } } mdat */
    uint8_t b[200];
    memset(b, 0, sizeof(b));
    size_t trun_len = 12 + 4 + 4 + 4 + 2 * 8;   /* flags 0x205 = data_offset, first flags, size */
    size_t traf_len = 8 + 16 + trun_len, moof_len = 8 + 16 + traf_len;
    size_t o = 0;
    put32(b + o, (uint32_t)moof_len);
    memcpy(b + o + 4, "moof", 4);
    o += 8;
    put32(b + o, 16);
    memcpy(b + o + 4, "mfhd", 4);
    o += 16;
    put32(b + o, (uint32_t)traf_len);
    memcpy(b + o + 4, "traf", 4);
    o += 8;
    put32(b + o, 16);
    memcpy(b + o + 4, "tfhd", 4);
    put32(b + o + 8, 0x020000);   /* default-base-is-moof */
    o += 16;
    put32(b + o, (uint32_t)trun_len);
    memcpy(b + o + 4, "trun", 4);
    put32(b + o + 8, 0x000205);   /* data offset, first sample flags, sample size */
    put32(b + o + 12, 2);
    put32(b + o + 16, (uint32_t)(moof_len + 8));
    put32(b + o + 24, 1234);      /* first sample size */
    put32(b + o + 28, 99);
    o += trun_len;
    put32(b + o, 8 + 1234 + 99);
    memcpy(b + o + 4, "mdat", 4);
    assert_int_equal(cmaf_first_sample_end(b, sizeof(b)), (int64_t)(moof_len + 8 + 1234));
    /* garbage: not found */
    assert_int_equal(cmaf_first_sample_end((const uint8_t *)"\0\0\0\x02junkjunk", 12), -1);
}

/* Playable while encoding: an EVENT playlist lists the first segments,
 * starts at 0, has no ENDLIST and keeps the target it is given; the early
 * master declares the bounds, no AVERAGE-BANDWIDTH, I-frame playlists with
 * their bounds only. */
static void test_early(void **st)
{
    (void)st;
    char *m = pkg_hls_media_event(&video[1], 2, 5);
    assert_non_null(m);
    assert_non_null(strstr(m, "#EXT-X-TARGETDURATION:5\n"));
    assert_non_null(strstr(m, "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0\n"));
    assert_int_equal(count(m, "#EXTINF:"), 2);
    assert_non_null(strstr(m, "seg_00001.m4s\n"));
    assert_null(strstr(m, "seg_00002.m4s"));
    assert_null(strstr(m, "ENDLIST"));
    free(m);
    pkg_track v[2] = { video[0], video[1] }, a = audio;
    v[0].bound_bps = 1000000;
    v[1].bound_bps = 6000000;
    a.bound_bps = 140000;
    pkg_set e = { v, 2, &a, NULL, 0, 4.0, 0, 1, 1 };
    m = pkg_hls_master(&e);
    assert_non_null(m);
    assert_non_null(strstr(m, "#EXT-X-STREAM-INF:BANDWIDTH=6140000,CODECS=\"avc1.64001f,mp4a.40.2\","));
    assert_non_null(strstr(m, "#EXT-X-STREAM-INF:BANDWIDTH=1140000,CODECS="));
    assert_null(strstr(m, "AVERAGE-BANDWIDTH"));
    assert_null(strstr(m, "I-FRAME"));
    free(m);
    /* with I-frame bounds: the I-frame playlists, with them; EVENT too */
    v[0].iframe_bound_bps = 300000;
    v[1].iframe_bound_bps = 900000;
    m = pkg_hls_master(&e);
    assert_int_equal(count(m, "#EXT-X-I-FRAME-STREAM-INF:"), 2);
    assert_non_null(strstr(m, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=900000,CODECS=\"avc1.64001f\","));
    free(m);
    m = pkg_hls_iframes_event(&video[1], 2, 5);
    assert_non_null(strstr(m, "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0\n"
                              "#EXT-X-I-FRAMES-ONLY\n"));
    assert_int_equal(count(m, "#EXT-X-BYTERANGE:"), 2);
    assert_null(strstr(m, "ENDLIST"));
    free(m);
    /* 2 x (bufsize 9000 kbits, 2 %, the boxes) per 4 s */
    int64_t ib = media_iframe_bound_bps(9000, 4.0, 30);
    assert_true(ib >= 2 * 9000000 / 4 && ib < 2 * 9000000 / 4 * 1.05);
    /* the bound: maxrate 4500 kb/s, bufsize 9000 kbits, 4 s at 30 fps */
    int64_t b = media_rung_bound_bps(4500, 9000, 4.0, 30);
    assert_true(b >= 4500000 + 9000000 / 4 && b < (4500000 + 9000000 / 4) * 1.05);
    assert_int_equal(media_rung_bound_bps(0, 0, 4.0, 30), 0);
}

/* media_publish_early lists the chunks done from the start without a gap,
 * and stops at a chunk whose init segment differs from the first one's
 * (its frames would be decoded with another SPS/PPS). */
static json_t *chunk_rec(int first_seg, int nsegs, int crc)
{
    json_t *segs = json_array();
    for (int s = 0; s < nsegs; s++)
        json_array_append_new(segs, json_pack("[IIII]", (json_int_t)(first_seg + s) * 4 * 90000,
                                              (json_int_t)4 * 90000, (json_int_t)50000,
                                              (json_int_t)10000));
    return json_pack("{s:I, s:[{ss ss si si si so}]}", "frames", (json_int_t)nsegs * 4 * 25,
                     "rungs", "name", "360p", "codecs", "avc1.64001e", "timescale", 90000,
                     "init_bytes", 700, "init_crc", crc, "segs", segs);
}

static int listed(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/360p/playlist.m3u8", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += !strncmp(line, "#EXTINF:", 8);
    fclose(f);
    return n;
}

static void test_early_listing(void **st)
{
    (void)st;
    char dir[] = "/tmp/ss-early-XXXXXX";
    assert_non_null(mkdtemp(dir));
    json_t *plan = json_pack("{s:[{ss si si si si}] s:[[ii][ii][ii]] si si si si}", "rungs",
                             "name", "360p", "width", 640, "height", 360, "maxrate_kbps", 1000,
                             "bufsize_kbits", 2000, "chunks", 0, 2, 2, 4, 4, 6, "fps_num", 25,
                             "fps_den", 1, "seg_num", 4, "seg_den", 1);
    /* the audio item's progress record: cut to 24 s, 6 of its segments
     * written so far */
    json_t *arec = json_pack("{s:i, s:b, s:[{ss si si so}]}", "frames", 600, "partial", 1,
                             "audio", "name", "audio", "timescale", 48000, "init_bytes", 600,
                             "segs", json_array());
    json_t *aseg_list = json_object_get(json_array_get(json_object_get(arec, "audio"), 0), "segs");
    for (int s = 0; s < 6; s++)
        json_array_append_new(aseg_list, json_pack("[IIII]", (json_int_t)s * 4 * 48000,
                                               (json_int_t)4 * 48000, (json_int_t)64000,
                                               (json_int_t)0));
    json_t *recs = json_pack("{so so so so}", "audio", arec, "c0", chunk_rec(0, 2, 7), "c1",
                             chunk_rec(2, 2, 7), "c2", chunk_rec(4, 2, 7));
    ss_err e = { 0 };
    /* the audio's progress record covers 5 segments: the rungs' 6th waits */
    json_array_remove(aseg_list, 5);
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 5);
    assert_int_equal(listed(dir), 5);
    /* and a first segment only: not playable yet, nothing written */
    char d2[] = "/tmp/ss-early-XXXXXX";
    assert_non_null(mkdtemp(d2));
    json_t *arec1 = json_deep_copy(arec);
    json_t *one = json_object_get(json_array_get(json_object_get(arec1, "audio"), 0), "segs");
    while (json_array_size(one) > 1)
        json_array_remove(one, 1);
    json_t *recs1 = json_pack("{sO sO}", "audio", arec1, "c0", json_object_get(recs, "c0"));
    json_decref(arec1);
    assert_int_equal(media_publish_early(d2, plan, recs1, &e), 0);
    assert_int_equal(listed(d2), -1);
    json_decref(recs1);
    rmdir(d2);
    /* the audio is done, cut to 24 s: its last segment (it ends at the
     * cut, which a re-run cut to the measured length would change) is
     * listed only by the final playlists */
    json_array_append_new(aseg_list, json_pack("[IIII]", (json_int_t)5 * 4 * 48000,
                                               (json_int_t)4 * 48000, (json_int_t)64000,
                                               (json_int_t)0));
    json_object_del(arec, "partial");
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 5);
    assert_int_equal(listed(dir), 5);
    /* the chunks measured another length (the audio runs again, cut
     * there): no audio segment past it, nor one that ends within a few AAC
     * frames before it, is listed (20.08 s: the 5th, ending at 20 s, is;
     * 20.04 s: it is not) */
    json_object_set_new(json_object_get(recs, "c2"), "frames", json_integer(195));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 5);
    json_object_set_new(json_object_get(recs, "c2"), "frames", json_integer(102));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 5);
    json_object_set_new(json_object_get(recs, "c2"), "frames", json_integer(101));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 4);
    json_object_set_new(json_object_get(recs, "c2"), "frames", json_integer(200));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 5);
    /* every rung's I-frame playlist, as long as its playlist; the master
     * names it. The subtitles only from the audio's final record */
    char path[600];
    snprintf(path, sizeof(path), "%s/360p/iframes.m3u8", dir);
    size_t len = 0;
    char *txt = ss_read_file(path, 1 << 20, &len, NULL);
    assert_non_null(txt);
    assert_int_equal(count(txt, "#EXT-X-BYTERANGE:"), 5);
    free(txt);
    snprintf(path, sizeof(path), "%s/master.m3u8", dir);
    txt = ss_read_file(path, 1 << 20, &len, NULL);
    assert_non_null(strstr(txt, "URI=\"360p/iframes.m3u8\""));
    assert_null(strstr(txt, "SUBTITLES"));
    free(txt);
    json_object_set_new(arec, "texts", json_pack("[{ss ss ss}]", "name", "sub_en", "lang", "en",
                                                 "label", "English"));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 5);
    txt = ss_read_file(path, 1 << 20, &len, NULL);
    assert_non_null(strstr(txt, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\""));
    assert_non_null(strstr(txt, "SUBTITLES=\"subs\"\n360p/playlist.m3u8"));
    free(txt);
    snprintf(path, sizeof(path), "%s/subtitles/sub_en.m3u8", dir);
    txt = ss_read_file(path, 1 << 20, &len, NULL);
    assert_non_null(strstr(txt, "#EXTINF:24.000,\nsub_en.vtt\n"));
    free(txt);
    /* the audio's part of the early BANDWIDTH is its bound: 6144 bits per
     * channel per AAC frame (576 kb/s for stereo) and the boxes */
    int64_t ab = media_audio_bound_bps(2, 4.0);
    assert_true(ab >= 576000 && ab < 576000 * 1.05);
    /* c2 wrote another init segment: only c0 and c1 are listed */
    json_object_set_new(recs, "c2", chunk_rec(4, 2, 8));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 4);
    assert_int_equal(listed(dir), 4);
    /* c1 is missing: a later chunk done first waits for it */
    json_object_del(recs, "c1");
    json_object_set_new(recs, "c2", chunk_rec(4, 2, 7));
    assert_int_equal(media_publish_early(dir, plan, recs, &e), 2);
    json_decref(plan);
    json_decref(recs);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rates, setup),
        cmocka_unit_test(test_early_listing),
        cmocka_unit_test_setup(test_media_playlist, setup),
        cmocka_unit_test_setup(test_iframe_playlist, setup),
        cmocka_unit_test_setup(test_master, setup),
        cmocka_unit_test_setup(test_text_playlist, setup),
        cmocka_unit_test_setup(test_mpd, setup),
        cmocka_unit_test_setup(test_early, setup),
        cmocka_unit_test_setup(test_multi, setup),
        cmocka_unit_test(test_lang_tag),
        cmocka_unit_test(test_first_sample_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
