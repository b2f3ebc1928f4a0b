/* s3_xml.c — S3's XML answers read with libxml2, strictly (see s3_xml.h).
 * libxml2's tree types stay in this file: callers see s3_xml and
 * s3_xml_node only. */
#include "s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "s3_buf.h"

struct s3_xml {
    xmlDoc *doc;
};

#define NODE(n) ((xmlNode *)(n))
#define OUT(n) ((const s3_xml_node *)(n))

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();   /* once, before any thread parses */
}

/* Deepest element nesting below n (n counts 1), stopping past limit. */
static int depth_over(const xmlNode *n, int depth, int limit)
{
    if (depth > limit)
        return 1;
    for (const xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && depth_over(c, depth + 1, limit))
            return 1;
    return 0;
}

s3_xml *s3_xml_parse(const char *data, size_t len, const char *root, ss_err *err)
{
    pthread_once(&init_once, xml_init);
    if (!data || !len)
        return ss_fail(err, SS_ENET, "empty XML document"), NULL;
    if (len > S3_XML_MAX_BYTES)
        return ss_fail(err, SS_ENET, "XML document of %zu bytes is over the limit", len), NULL;
    if (memchr(data, '\0', len))
        return ss_fail(err, SS_ENET, "XML document is not UTF-8 (NUL bytes)"), NULL;
    if (memmem(data, len, "<!DOCTYPE", 9) || memmem(data, len, "<!ENTITY", 8))
        return ss_fail(err, SS_ENET, "XML document with a DTD refused"), NULL;
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (!ctxt)
        return ss_fail(err, SS_ENOMEM, "out of memory"), NULL;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, data, (int)len, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                    XML_PARSE_NOCDATA);
    s3_xml *x = NULL;
    xmlNode *top = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!doc || !ctxt->wellFormed || !top) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[200] = "no root element";
        if (e && e->message) {
            snprintf(msg, sizeof(msg), "%s", e->message);
            size_t ml = strlen(msg);
            while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
                msg[--ml] = '\0';
        }
        ss_fail(err, SS_ENET, "malformed XML (%s, line %d)", msg, e ? e->line : 0);
    } else if (doc->intSubset || doc->extSubset) {
        ss_fail(err, SS_ENET, "XML document with a DTD refused");
    } else if (depth_over(top, 1, S3_XML_MAX_DEPTH)) {
        ss_fail(err, SS_ENET, "XML nested deeper than %d elements", S3_XML_MAX_DEPTH);
    } else if (root && strcmp((const char *)top->name, root)) {
        ss_fail(err, SS_ENET, "expected an XML <%s> document, got <%.64s>", root,
                (const char *)top->name);
    } else if (!(x = calloc(1, sizeof(*x)))) {
        ss_fail(err, SS_ENOMEM, "out of memory");
    } else {
        x->doc = doc;
        doc = NULL;
    }
    if (doc)
        xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return x;
}

void s3_xml_free(s3_xml *x)
{
    if (!x)
        return;
    xmlFreeDoc(x->doc);
    free(x);
}

const s3_xml_node *s3_xml_root(const s3_xml *x)
{
    return OUT(xmlDocGetRootElement(x->doc));
}

const char *s3_xml_name(const s3_xml_node *n)
{
    return (const char *)NODE(n)->name;
}

const s3_xml_node *s3_xml_child(const s3_xml_node *parent, const char *name,
                                const s3_xml_node *after)
{
    if (!parent)
        return NULL;
    const xmlNode *c = after ? NODE(after)->next : NODE(parent)->children;
    for (; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && (!name || !strcmp((const char *)c->name, name)))
            return OUT(c);
    return NULL;
}

char *s3_xml_text(const s3_xml_node *n)
{
    if (!n)
        return NULL;
    s3_buf b;
    s3_buf_init(&b, 0);
    s3_buf_add(&b, "", 0);
    for (const xmlNode *c = NODE(n)->children; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            s3_buf_adds(&b, (const char *)c->content);
    if (b.oom) {
        s3_buf_free(&b);
        return NULL;
    }
    return s3_buf_take(&b);
}

char *s3_xml_child_text(const s3_xml_node *parent, const char *name)
{
    return s3_xml_text(s3_xml_child(parent, name, NULL));
}

int s3_xml_error(const char *data, size_t len, char **code, char **message)
{
    *code = *message = NULL;
    ss_err e = { 0 };
    s3_xml *x = len ? s3_xml_parse(data, len, "Error", &e) : NULL;
    if (!x)
        return 0;
    *code = s3_xml_child_text(s3_xml_root(x), "Code");
    *message = s3_xml_child_text(s3_xml_root(x), "Message");
    s3_xml_free(x);
    return 1;
}

char *s3_xml_escape(const char *s)
{
    s3_buf b;
    s3_buf_init(&b, 0);
    s3_buf_add(&b, "", 0);
    for (; *s; s++) {
        switch (*s) {
        case '&': s3_buf_adds(&b, "&amp;"); break;
        case '<': s3_buf_adds(&b, "&lt;"); break;
        case '>': s3_buf_adds(&b, "&gt;"); break;
        case '"': s3_buf_adds(&b, "&quot;"); break;
        case '\'': s3_buf_adds(&b, "&apos;"); break;
        default: s3_buf_add(&b, s, 1);
        }
    }
    return s3_buf_take(&b);
}
