/* l_json.c: ai.json, JSON <-> Lua values through cJSON: encode(value, opts) and decode(string),
 * with json.null standing for JSON null.
 *
 * Mapping: Lua tables with keys 1..n -> arrays, with string keys -> objects, empty -> {} ;
 * integers print as integers, floats as the shortest %.15g..%.17g that reads back exactly (with
 * ".0" added when that looks integral, so a float stays a float through decode); strings must be
 * UTF-8. Decoding gives arrays as sequences, objects as tables, integers that fit lua_Integer as
 * integers (read from the text itself, not from cJSON's double), other numbers as floats.
 * Every cJSON allocation sits in a to-be-closed box so that a Lua error frees it at once. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbind.h"
#include "../io/fmt.h"

#define JSON_MAXDEPTH 1000 /* cJSON's own parse limit (CJSON_NESTING_LIMIT) */
#define JSON_BOX_MT "aiart.json.box"

static const char json_null_tag = 0;
#define JSON_NULL ((void *)(uintptr_t)&json_null_tag)

/* ---- the box owning cJSON memory ---- */

typedef struct {
  cJSON *root;
  char *text;
} jbox;

static int jbox_close(lua_State *L) {
  jbox *b = lua_touserdata(L, 1);
  if (b) {
    if (b->root) cJSON_Delete(b->root);
    if (b->text) cJSON_free(b->text);
    b->root = NULL;
    b->text = NULL;
  }
  return 0;
}

/* Pushes a new empty box as a to-be-closed slot. */
static jbox *jbox_new(lua_State *L) {
  jbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->root = NULL;
  b->text = NULL;
  if (luaL_newmetatable(L, JSON_BOX_MT)) {
    lua_pushcfunction(L, jbox_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, jbox_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  lua_toclose(L, -1);
  return b;
}

/* 1-based line and column of byte pos. */
static void line_col(const char *s, size_t pos, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < pos; i++) {
    if (s[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* encode                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  lua_State *L;
  jbox *box;
  int visiting; /* stack index of the set of tables being encoded (cycle check) */
  int sort;
} enc_t;

static void enc(enc_t *e, int idx, int depth, cJSON *parent, const char *key);

/* Hangs item under parent (or makes it the root). item may be NULL (out of memory). */
static void attach(enc_t *e, cJSON *parent, const char *key, cJSON *item) {
  if (!item) luaL_error(e->L, "json.encode: out of memory");
  if (!parent) {
    e->box->root = item;
  } else if (key) {
    if (!cJSON_AddItemToObject(parent, key, item)) {
      cJSON_Delete(item);
      luaL_error(e->L, "json.encode: out of memory");
    }
  } else if (!cJSON_AddItemToArray(parent, item)) {
    cJSON_Delete(item);
    luaL_error(e->L, "json.encode: out of memory");
  }
}

static void enc_number(enc_t *e, int idx, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  char buf[64];
  if (lua_isinteger(L, idx)) {
    snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
  } else {
    double d = (double)lua_tonumber(L, idx);
    if (isnan(d)) luaL_error(L, "json.encode: cannot encode NaN");
    if (isinf(d)) luaL_error(L, "json.encode: cannot encode %s", d > 0 ? "inf" : "-inf");
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, d);
      if (strtod(buf, NULL) == d) break;
    }
    for (char *p = buf; *p; p++)
      if (*p == ',') *p = '.'; /* a locale with a decimal comma */
    if (!strpbrk(buf, ".eE")) strcat(buf, ".0");
  }
  attach(e, parent, key, cJSON_CreateRaw(buf));
}


/* Strings go in as raw JSON made here: cJSON's own strings stop at a NUL byte. */
static void enc_string(enc_t *e, int idx, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  size_t bad = fmt_utf8_check((const unsigned char *)s, n);
  if (bad < n) luaL_error(L, "json.encode: string is not valid UTF-8 (byte %d)", (int)bad + 1);
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  luaL_addchar(&B, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': luaL_addstring(&B, "\\\""); break;
      case '\\': luaL_addstring(&B, "\\\\"); break;
      case '\n': luaL_addstring(&B, "\\n"); break;
      case '\r': luaL_addstring(&B, "\\r"); break;
      case '\t': luaL_addstring(&B, "\\t"); break;
      case '\b': luaL_addstring(&B, "\\b"); break;
      case '\f': luaL_addstring(&B, "\\f"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char u[8];
          snprintf(u, sizeof u, "\\u%04x", c);
          luaL_addstring(&B, u);
        } else {
          luaL_addchar(&B, (char)c);
        }
    }
  }
  luaL_addchar(&B, '"');
  luaL_pushresult(&B);
  attach(e, parent, key, cJSON_CreateRaw(lua_tostring(L, -1)));
  lua_pop(L, 1);
}

typedef struct {
  const char *s;
  size_t n;
} skey;

static int cmp_skey(const void *a, const void *b) {
  const skey *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* cJSON keys are C strings: refuse what it would cut short or what is not UTF-8. */
static const char *checked_key(lua_State *L, const char *k, size_t n) {
  if (strlen(k) != n) luaL_error(L, "json.encode: object key contains a NUL byte");
  if (fmt_utf8_check((const unsigned char *)k, n) < n)
    luaL_error(L, "json.encode: object key is not valid UTF-8");
  return k;
}

static void enc_table(enc_t *e, int idx, int depth, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  if (depth >= JSON_MAXDEPTH)
    luaL_error(L, "json.encode: nesting deeper than %d levels", JSON_MAXDEPTH);
  luaL_checkstack(L, 8, "json.encode: nesting too deep");
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->visiting) != LUA_TNIL)
    luaL_error(L, "json.encode: cycle detected (a table contains itself)");
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->visiting);

  /* arrays have exactly the keys 1..n; objects only string keys */
  lua_Integer n = 0, maxk = 0, nstr = 0, nint = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
    int kt = lua_type(L, -1);
    if (kt == LUA_TSTRING) {
      nstr++;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      nint++;
      if (lua_tointeger(L, -1) > maxk) maxk = lua_tointeger(L, -1);
    } else if (kt == LUA_TNUMBER) {
      luaL_error(L, "json.encode: bad table key %s (arrays need keys 1..n, objects string keys)",
                 luaL_tolstring(L, -1, NULL));
    } else {
      luaL_error(L, "json.encode: cannot use a %s as an object key (only strings)",
                 luaL_typename(L, -1));
    }
  }
  if (nstr && nint) luaL_error(L, "json.encode: table mixes integer and string keys");
  if (nint) {
    if (maxk != n)
      luaL_error(L, "json.encode: array is sparse (keys 1..%I with %I missing)", (lua_Integer)maxk,
                 (lua_Integer)(maxk - n));
    cJSON *arr = cJSON_CreateArray();
    attach(e, parent, key, arr);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      enc(e, -1, depth + 1, arr, NULL);
      lua_pop(L, 1);
    }
  } else {
    cJSON *obj = cJSON_CreateObject();
    attach(e, parent, key, obj);
    if (e->sort && n > 1) {
      /* key array in Lua memory (freed by the GC whatever happens); the strings stay alive as
       * keys of the table being encoded */
      skey *ks = lua_newuserdatauv(L, sizeof(skey) * (size_t)n, 0);
      lua_Integer k = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        lua_pop(L, 1);
        ks[k].s = lua_tolstring(L, -1, &ks[k].n);
        k++;
      }
      qsort(ks, (size_t)n, sizeof *ks, cmp_skey);
      for (lua_Integer i = 0; i < n; i++) {
        const char *kk = checked_key(L, ks[i].s, ks[i].n); /* alive as a key of the table */
        lua_pushlstring(L, ks[i].s, ks[i].n);
        lua_rawget(L, idx);
        enc(e, -1, depth + 1, obj, kk);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    } else {
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        size_t kn;
        const char *kk = lua_tolstring(L, -2, &kn);
        enc(e, -1, depth + 1, obj, checked_key(L, kk, kn));
        lua_pop(L, 1);
      }
    }
  }
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, e->visiting);
}

static void enc(enc_t *e, int idx, int depth, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      attach(e, parent, key, cJSON_CreateNull());
      break;
    case LUA_TBOOLEAN:
      attach(e, parent, key, cJSON_CreateBool(lua_toboolean(L, idx)));
      break;
    case LUA_TNUMBER:
      enc_number(e, idx, parent, key);
      break;
    case LUA_TSTRING:
      enc_string(e, idx, parent, key);
      break;
    case LUA_TTABLE:
      enc_table(e, idx, depth, parent, key);
      break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == JSON_NULL) {
        attach(e, parent, key, cJSON_CreateNull());
        break;
      }
      /* fall through */
    default:
      luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
  }
}

/* json.encode(value [, {indent = bool|n, sort_keys = true}]) -> string */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lai_lastopts(L, 2, LAI_OPTS("indent", "sort_keys"));
  int indent = 0, sort = lai_optboolfield(L, 2, "sort_keys", 1);
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "indent");
    lua_Integer k = 0;
    if (t == LUA_TBOOLEAN) indent = lua_toboolean(L, -1) ? 2 : 0;
    else if (lai_isint(L, -1, &k) && k >= 0 && k <= 16) indent = (int)k;
    else if (t != LUA_TNIL)
      return luaL_argerror(L, 2, lua_pushfstring(L, "option 'indent' must be a boolean or an integer 0..16, got %s",
                                                 t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  enc_t e;
  e.L = L;
  e.sort = sort;
  e.box = jbox_new(L); /* 3 */
  lua_newtable(L);     /* 4 */
  e.visiting = 4;
  enc(&e, 1, 0, NULL, NULL);
  e.box->text = indent ? cJSON_Print(e.box->root) : cJSON_PrintUnformatted(e.box->root);
  if (!e.box->text) return luaL_error(L, "json.encode: out of memory");
  if (!indent) {
    lua_pushstring(L, e.box->text);
    return 1;
  }
  /* cJSON indents with tabs: every literal tab in its output is layout (tabs inside strings
   * are escaped), leading ones become `indent` spaces, the one after ':' a space */
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  int bol = 1;
  for (const char *p = e.box->text; *p; p++) {
    if (*p == '{') { /* cJSON prints an empty object as "{\n<tabs>}" */
      const char *q = p + 1;
      while (*q == '\n' || *q == '\t') q++;
      if (*q == '}') {
        luaL_addstring(&B, "{}");
        p = q;
        bol = 0;
        continue;
      }
    }
    if (*p == '\t') {
      if (bol)
        for (int k = 0; k < indent; k++) luaL_addchar(&B, ' ');
      else
        luaL_addchar(&B, ' ');
    } else {
      luaL_addchar(&B, *p);
      bol = *p == '\n';
    }
  }
  luaL_pushresult(&B);
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* decode                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  const char *s;
  size_t n;
  size_t cursor; /* scan position for the next number token */
} dec_t;

/* cJSON accepts what JSON does not (raw control characters, all bytes <= 32 as blanks) and
 * cuts strings at "\u0000": refuse those up front, and the nesting beyond the limit with a
 * clear message. */
static void prescan(lua_State *L, const char *s, size_t n) {
  int in_str = 0, depth = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *why = NULL;
    if (in_str) {
      if (c == '"') {
        in_str = 0;
      } else if (c == '\\') {
        if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
          why = "\\u0000 (NUL) in a string is not supported";
        i++;
      } else if (c < 0x20) {
        why = "control character in a string";
      }
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > JSON_MAXDEPTH) why = "nesting deeper than 1000 levels";
    } else if (c == ']' || c == '}') {
      if (depth > 0) depth--;
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      why = "unexpected control character";
    }
    if (why) {
      int line, col;
      line_col(s, i, &line, &col);
      luaL_error(L, "json.decode: %s at line %d, column %d (byte %d)", why, line, col, (int)i + 1);
    }
  }
}

/* Next number token in the text (outside strings); 0 when none is left. */
static int next_number(dec_t *d, size_t *start, size_t *len) {
  size_t i = d->cursor;
  while (i < d->n) {
    char c = d->s[i];
    if (c == '"') {
      for (i++; i < d->n && d->s[i] != '"'; i++)
        if (d->s[i] == '\\') i++;
      i++;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i;
      while (j < d->n && strchr("0123456789+-eE.", d->s[j]) && d->s[j]) j++;
      *start = i;
      *len = j - i;
      d->cursor = j;
      return 1;
    } else {
      i++;
    }
  }
  d->cursor = i;
  return 0;
}

static void dec_number(lua_State *L, dec_t *d, const cJSON *it) {
  size_t st, tl;
  if (next_number(d, &st, &tl) && tl < 32) {
    const char *t = d->s + st;
    int is_int = 1;
    for (size_t i = 0; i < tl && is_int; i++)
      is_int = (t[i] >= '0' && t[i] <= '9') || (i == 0 && t[i] == '-');
    if (is_int) {
      char buf[32];
      memcpy(buf, t, tl);
      buf[tl] = 0;
      errno = 0;
      char *end;
      long long v = strtoll(buf, &end, 10);
      /* the token must be the one cJSON read: same value as its double */
      if (errno == 0 && *end == 0 && (double)v == it->valuedouble && v >= LUA_MININTEGER &&
          v <= LUA_MAXINTEGER) {
        lua_pushinteger(L, (lua_Integer)v);
        return;
      }
    }
  }
  lua_pushnumber(L, (lua_Number)it->valuedouble);
}

static void dec_value(lua_State *L, dec_t *d, const cJSON *it) {
  luaL_checkstack(L, 6, "json.decode: nesting too deep");
  switch (it->type & 0xFF) {
    case cJSON_NULL:
      lua_pushlightuserdata(L, JSON_NULL);
      break;
    case cJSON_False:
      lua_pushboolean(L, 0);
      break;
    case cJSON_True:
      lua_pushboolean(L, 1);
      break;
    case cJSON_Number:
      dec_number(L, d, it);
      break;
    case cJSON_String:
      lua_pushstring(L, it->valuestring);
      break;
    case cJSON_Array: {
      int n = 0;
      for (const cJSON *c = it->child; c; c = c->next) n++;
      lua_createtable(L, n, 0);
      lua_Integer i = 1;
      for (const cJSON *c = it->child; c; c = c->next) {
        dec_value(L, d, c);
        lua_rawseti(L, -2, i++);
      }
      break;
    }
    case cJSON_Object: {
      int n = 0;
      for (const cJSON *c = it->child; c; c = c->next) n++;
      lua_createtable(L, 0, n);
      for (const cJSON *c = it->child; c; c = c->next) {
        lua_pushstring(L, c->string);
        dec_value(L, d, c); /* a repeated key: the last one wins */
        lua_rawset(L, -3);
      }
      break;
    }
    default:
      luaL_error(L, "json.decode: unexpected value");
  }
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* json.decode(string) -> value */
static int json_decode(lua_State *L) {
  lai_checkmax(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  size_t i = 0;
  while (i < n && is_blank(s[i])) i++;
  if (i == n) return luaL_error(L, "json.decode: empty input");
  prescan(L, s, n);
  jbox *b = jbox_new(L);
  const char *end = NULL;
  b->root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  if (!b->root) {
    size_t pos = end && end >= s && end <= s + n ? (size_t)(end - s) : 0;
    int line, col;
    line_col(s, pos, &line, &col);
    char near[24];
    size_t k = 0;
    for (size_t j = pos; j < n && k < 16; j++)
      near[k++] = (s[j] >= 0x20 && s[j] < 0x7f) ? s[j] : '?';
    near[k] = 0;
    if (pos >= n)
      return luaL_error(L, "json.decode: unexpected end of input at line %d, column %d (byte %d)",
                        line, col, (int)pos + 1);
    return luaL_error(L, "json.decode: invalid JSON at line %d, column %d (byte %d) near '%s'",
                      line, col, (int)pos + 1, near);
  }
  size_t pos = (size_t)(end - s);
  while (pos < n && is_blank(s[pos])) pos++;
  if (pos < n) {
    int line, col;
    line_col(s, pos, &line, &col);
    return luaL_error(L, "json.decode: trailing characters at line %d, column %d (byte %d)", line,
                      col, (int)pos + 1);
  }
  dec_t d = {s, n, 0};
  dec_value(L, &d, b->root);
  return 1;
}

void lai_open_json(lua_State *L) {
  static const luaL_Reg fns[] = {{"encode", json_encode}, {"decode", json_decode}, {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_pushlightuserdata(L, JSON_NULL);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -3, "json");
}
