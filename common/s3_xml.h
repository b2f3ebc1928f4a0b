/* s3_xml.h — reading the XML documents S3 answers with (Error,
 * InitiateMultipartUploadResult, ListBucketResult, DeleteResult) and
 * escaping text for the ones we send.
 *
 * Parsing is libxml2's, strict: a document that is not well-formed
 * (truncated, an undefined entity, bytes after the root, ...), that
 * carries a DTD (no entity declarations, so no entity expansion attacks),
 * nests deeper than S3_XML_MAX_DEPTH or has another root element than the
 * caller expects is refused with a clear error; nothing is fetched from
 * the network. Names match by local name (S3 puts its elements in a
 * default namespace). CDATA sections are read as the text they hold.
 */
#ifndef SS_S3_XML_H
#define SS_S3_XML_H

#include <stddef.h>

#include "ss_err.h"

#define S3_XML_MAX_DEPTH 32        /* S3's answers nest 3 deep */
#define S3_XML_MAX_BYTES (64 << 20)

typedef struct s3_xml s3_xml;            /* a parsed document */
typedef struct s3_xml_node s3_xml_node;  /* an element in it */

/* Parse len bytes (need not be NUL-terminated). root: the name the root
 * element must have, or NULL for any. Returns the document (free with
 * s3_xml_free), or NULL with err set: SS_ENET (a server's answer that is
 * not an acceptable document; the message says why) or SS_ENOMEM. */
s3_xml *s3_xml_parse(const char *data, size_t len, const char *root, ss_err *err);
void s3_xml_free(s3_xml *x);

/* The root element (never NULL for a parsed document) and its name. */
const s3_xml_node *s3_xml_root(const s3_xml *x);
const char *s3_xml_name(const s3_xml_node *n);

/* The next child element of parent named name (NULL: any) after `after`
 * (NULL: the first one); NULL when there is none. */
const s3_xml_node *s3_xml_child(const s3_xml_node *parent, const char *name,
                                const s3_xml_node *after);

/* The text of n (its character data, entities decoded), or of parent's
 * first child named name; malloc'd, the caller frees; NULL when there is
 * no such element (or out of memory). */
char *s3_xml_text(const s3_xml_node *n);
char *s3_xml_child_text(const s3_xml_node *parent, const char *name);

/* When the len bytes at data are an S3 <Error> document, set *code and
 * *message (malloc'd, either may be NULL when the element is missing) and
 * return 1; otherwise (another document, not XML, empty) 0 with both
 * NULL. */
int s3_xml_error(const char *data, size_t len, char **code, char **message);

/* Escape &, <, >, ", ' for an XML text node (malloc'd). */
char *s3_xml_escape(const char *s);

#endif
