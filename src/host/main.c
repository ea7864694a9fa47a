/* main.c: the aiart-lua executable: a Lua 5.4 stand-alone interpreter (modelled on, and in
 * parts adapted from, Lua 5.4's lua.c, MIT licence, Copyright (C) 1994-2022 Lua.org, PUC-Rio)
 * with the aiart module preloaded and a REPL whose logic lives in lua/aiart/repl/.
 *
 * Differences from the stock `lua`:
 *  - package.preload["aiart"] = luaopen_aiart; package.path starts with
 *    <exe dir>/lua/?.lua;<exe dir>/lua/?/init.lua and <exe dir>/../share/aiart-lua/lua/...
 *  - with -e, -i or the REPL, the global `ai` is `require "aiart"` (loaded lazily on first use).
 *  - with no script and stdin not a terminal, stdin is read line by line by the REPL without
 *    prompts (pipe mode): results are printed, errors go to stderr and the loop goes on; the exit
 *    status is 1 if any line failed, else 0. `aiart-lua -` still runs stdin as one script.
 *  - -i shows the version line only when stdin is a terminal.
 *
 * The interface to lua/aiart/repl/init.lua: main.c calls require("aiart.repl").run(host) where host
 * is a table of C functions and flags (see host_funcs / push_host below); tab completion calls
 * require("aiart.repl").complete(text, line_before) which returns a list of candidates, or nil
 * to fall back to readline's file name completion.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "core/ai.h" /* ai_clock */

#ifndef AIART_NO_READLINE
#include <readline/readline.h>
#include <readline/history.h>
#endif

#ifndef AIART_VERSION
#define AIART_VERSION "0.1.0"
#endif

#define PROGNAME "aiart-lua"
#ifndef LUA_IGMARK
#define LUA_IGMARK "-"
#endif
#define LUA_INIT_VAR "LUA_INIT"
#define LUA_INITVARVERSION LUA_INIT_VAR LUA_VERSUFFIX

int luaopen_aiart(lua_State *L);

static lua_State *globalL = NULL;
static const char *progname = PROGNAME;

/* ------------------------------------------------------------------------------------------ */
/* signals: Ctrl-C while Lua runs sets a hook that raises "interrupted"                          */
/* ------------------------------------------------------------------------------------------ */

static void setsignal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* Ctrl-C presses since the last interrupt was delivered. lua.c dies on the second press; here a
 * press also asks the core to stop (a long matmul between its blocks, a backward between its
 * nodes), the second only says what is going on, and the third ends the process. */
static volatile sig_atomic_t presses = 0;

static int msghandler(lua_State *L);
static int repl_msghandler(lua_State *L);

static void lstop(lua_State *L, lua_Debug *ar) {
  lua_sethook(L, NULL, 0, 0);
  presses = 0;
  ai_clear_interrupt();
  if (ar->event == LUA_HOOKCALL && lua_getinfo(L, "f", ar)) {
    /* the call is a message handler: an error ("matmul: interrupted") is already on its way */
    lua_CFunction f = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (f == msghandler || f == repl_msghandler) return;
  }
  luaL_error(L, "interrupted");
}

static void laction(int i) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  presses = presses + 1;
  ai_request_interrupt();
  if (presses == 2) {
    static const char msg[] = "\n(busy in a computation: it stops at its next check; Ctrl-C once more quits)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
  } else if (presses >= 3) {
    setsignal(i, SIG_DFL);
    raise(i);
  }
  lua_sethook(globalL, lstop, flag, 1);
}

/* Removes our interrupt hook if it is still pending (the signal came at the very end), and
 * forgets the presses. */
static void clear_stop_hook(lua_State *L) {
  if (lua_gethook(L) == lstop) lua_sethook(L, NULL, 0, 0);
  presses = 0;
  ai_clear_interrupt();
}

/* ------------------------------------------------------------------------------------------ */
/* messages                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void print_usage(const char *badoption) {
  lua_writestringerror("%s: ", progname);
  if (badoption[1] == 'e' || badoption[1] == 'l')
    lua_writestringerror("'%s' needs argument\n", badoption);
  else
    lua_writestringerror("unrecognized option '%s'\n", badoption);
  lua_writestringerror(
      "usage: %s [options] [script [args]]\n"
      "Available options are:\n"
      "  -e stat   execute string 'stat' (the global 'ai' is the aiart module)\n"
      "  -i        enter interactive mode after executing 'script'\n"
      "  -l mod    require library 'mod' into global 'mod'\n"
      "  -l g=mod  require library 'mod' into global 'g'\n"
      "  -v        show version information\n"
      "  -E        ignore environment variables\n"
      "  -W        turn warnings on\n"
      "  --        stop handling options\n"
      "  -         stop handling options and execute stdin\n"
      "With no script, reads Lua lines from stdin: interactively on a terminal, silently\n"
      "(exit status 1 if any line failed) from a pipe.\n",
      progname);
}

static void l_message(const char *pname, const char *msg) {
  if (pname) lua_writestringerror("%s: ", pname);
  lua_writestringerror("%s\n", msg);
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error message not a string)";
    l_message(progname, msg);
    lua_pop(L, 1);
  }
  return status;
}

/* Error object -> string message on top (no traceback). */
static const char *error_string(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return lua_tostring(L, -1);
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  return msg;
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1; /* an object with __tostring: that is the message */
  msg = error_string(L);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  setsignal(SIGINT, laction);
  status = lua_pcall(L, narg, nres, base);
  setsignal(SIGINT, SIG_DFL);
  clear_stop_hook(L);
  lua_remove(L, base);
  return status;
}

static void print_version(void) {
  const char *s = PROGNAME " " AIART_VERSION " (" LUA_COPYRIGHT ")";
  lua_writestring(s, strlen(s));
  lua_writeline();
}

/* ------------------------------------------------------------------------------------------ */
/* the environment of aiart: preload, package.path, the lazy global `ai`                       */
/* ------------------------------------------------------------------------------------------ */

/* The directory of the running executable (from /proc/self/exe, else argv[0]), or NULL. */
static char *exe_dir(const char *argv0) {
  static char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
  } else {
    if (argv0 == NULL || strchr(argv0, '/') == NULL || realpath(argv0, buf) == NULL) return NULL;
  }
  char *slash = strrchr(buf, '/');
  if (slash == NULL) return NULL;
  if (slash == buf) slash[1] = '\0'; /* "/aiart-lua" -> "/" */
  else *slash = '\0';
  return buf;
}

static void setup_aiart(lua_State *L, const char *argv0) {
  /* package.preload["aiart"] = luaopen_aiart */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_aiart);
  lua_setfield(L, -2, "aiart");
  lua_pop(L, 1);
  /* package.path = <exe>/lua/?.lua;<exe>/lua/?/init.lua;<exe>/../share/aiart-lua/lua/...;old */
  const char *dir = exe_dir(argv0);
  if (dir == NULL) return;
  const char *sep = (dir[0] == '/' && dir[1] == '\0') ? "" : "/";
  lua_getglobal(L, "package");
  if (!lua_istable(L, -1)) { lua_pop(L, 1); return; }
  lua_getfield(L, -1, "path");
  const char *old = lua_tostring(L, -1);
  lua_pushfstring(L,
                  "%s%slua/?.lua;%s%slua/?/init.lua;"
                  "%s%s../share/aiart-lua/lua/?.lua;%s%s../share/aiart-lua/lua/?/init.lua;%s",
                  dir, sep, dir, sep, dir, sep, dir, sep, old ? old : "");
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

/* The global `ai` of -e and the REPL, loaded on first use: lua/aiart/util.lua's
 * install_ai_global, the one bootstrap that the REPL and the Jupyter kernel share. A binary
 * without its Lua library gets `ai` at once instead. */
static void install_ai_global(lua_State *L) {
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "aiart.util");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_getfield(L, -1, "install_ai_global");
    if (lua_pcall(L, 0, 0, 0) == LUA_OK) {
      lua_settop(L, top);
      return;
    }
  }
  lua_settop(L, top);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "aiart");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) lua_setglobal(L, "ai");
  lua_settop(L, top);
}

/* ------------------------------------------------------------------------------------------ */
/* script, -e, -l, LUA_INIT (as lua.c)                                                         */
/* ------------------------------------------------------------------------------------------ */

static void createargtable(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dofile(lua_State *L, const char *name) {
  return dochunk(L, luaL_loadfile(L, name));
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* globname[=modname]: globname = require(modname); a "-suffix" is cut from the global name. */
static int dolibrary(lua_State *L, char *globname) {
  int status;
  char *suffix = NULL;
  char *modname = strchr(globname, '=');
  if (modname == NULL) {
    modname = globname;
    suffix = strchr(modname, *LUA_IGMARK);
  } else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = docall(L, 1, 1);
  if (status == LUA_OK) {
    if (suffix != NULL) *suffix = '\0';
    lua_setglobal(L, globname);
  }
  return report(L, status);
}

static int pushargs(lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  int status;
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

#define has_error 1
#define has_i 2
#define has_v 4
#define has_e 8
#define has_E 16

static int collectargs(char **argv, int *first) {
  int args = 0;
  int i;
  if (argv[0] != NULL) {
    if (argv[0][0]) progname = argv[0];
  } else {
    *first = -1;
    return 0;
  }
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    switch (argv[i][1]) {
    case '-':
      if (argv[i][2] != '\0') return has_error;
      *first = i + 1;
      return args;
    case '\0':
      return args; /* script "name" is '-' */
    case 'E':
      if (argv[i][2] != '\0') return has_error;
      args |= has_E;
      break;
    case 'W':
      if (argv[i][2] != '\0') return has_error;
      break;
    case 'i':
      args |= has_i; /* (-i implies -v on a terminal) */
      /* FALLTHROUGH */
    case 'v':
      if (argv[i][2] != '\0') return has_error;
      if (argv[i][1] == 'v') args |= has_v;
      break;
    case 'e':
      args |= has_e;
      /* FALLTHROUGH */
    case 'l':
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return has_error;
      }
      break;
    default:
      return has_error;
    }
  }
  *first = 0;
  return args;
}

static int runargs(lua_State *L, char **argv, int n) {
  int i;
  for (i = 1; i < n; i++) {
    int option = argv[i][1];
    switch (option) {
    case 'e':
    case 'l': {
      int status;
      char *extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++i];
      status = (option == 'e') ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
      break;
    }
    case 'W':
      lua_warning(L, "@on", 0);
      break;
    }
  }
  return 1;
}

static int handle_luainit(lua_State *L) {
  const char *name = "=" LUA_INITVARVERSION;
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=" LUA_INIT_VAR;
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  else if (init[0] == '@') return dofile(L, init + 1);
  else return dostring(L, init, name);
}

/* ------------------------------------------------------------------------------------------ */
/* the host table given to aiart.repl                                                          */
/* ------------------------------------------------------------------------------------------ */

static int repl_ref = LUA_NOREF;  /* registry ref of the aiart.repl module table */
static int pcall_depth = 0;       /* stack depth at entry of the running host.pcall */
static int stdin_tty, stdout_tty, stderr_tty;
static int interactive;           /* stdin is a terminal: prompts, banner, history */
static int use_readline;          /* reading with GNU readline (interactive, readline built in) */

static int stack_depth(lua_State *L) {
  lua_Debug ar;
  int lo = 0, hi = 1;
  while (lua_getstack(L, hi, &ar)) { lo = hi; hi *= 2; }
  while (hi - lo > 1) { /* lo exists, hi does not */
    int mid = (lo + hi) / 2;
    if (lua_getstack(L, mid, &ar)) lo = mid; else hi = mid;
  }
  return lua_getstack(L, 0, &ar) ? lo + 1 : 0;
}

/* A global name for a function: "mod.name" found in package.loaded (as lauxlib does). */
static int findfield(lua_State *L, int objidx, int level) {
  if (level == 0 || !lua_istable(L, -1)) return 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (lua_rawequal(L, objidx, -1)) {
        lua_pop(L, 1);
        return 1;
      } else if (findfield(L, objidx, level - 1)) {
        lua_pushliteral(L, ".");
        lua_replace(L, -3);
        lua_concat(L, 3); /* key "." name */
        return 1;
      }
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int pushglobalfuncname(lua_State *L, lua_Debug *ar) {
  int top = lua_gettop(L);
  lua_getinfo(L, "f", ar);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  luaL_checkstack(L, 6, "not enough stack");
  if (findfield(L, top + 1, 2)) {
    const char *name = lua_tostring(L, -1);
    if (strncmp(name, LUA_GNAME ".", 3) == 0) {
      lua_pushstring(L, name + 3);
      lua_remove(L, -2);
    }
    lua_copy(L, -1, top + 1);
    lua_settop(L, top + 1);
    return 1;
  }
  lua_settop(L, top);
  return 0;
}

static void pushfuncname(lua_State *L, lua_Debug *ar) {
  if (pushglobalfuncname(L, ar)) {
    lua_pushfstring(L, "function '%s'", lua_tostring(L, -1));
    lua_remove(L, -2);
  } else if (*ar->namewhat != '\0')
    lua_pushfstring(L, "%s '%s'", ar->namewhat, ar->name);
  else if (*ar->what == 'm')
    lua_pushliteral(L, "main chunk");
  else if (*ar->what != 'C')
    lua_pushfstring(L, "function <%s:%d>", ar->short_src, ar->linedefined);
  else
    lua_pushliteral(L, "?");
}

/* Message handler of host.pcall: message + a traceback of the levels above host.pcall only. */
static int repl_msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1;
  msg = error_string(L);
  int last = stack_depth(L) - pcall_depth - 1; /* last level to show */
  luaL_Buffer b;
  lua_Debug ar;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, msg);
  if (last >= 1) {
    luaL_addstring(&b, "\nstack traceback:");
    for (int level = 1; level <= last; level++) {
      if (last > 22 && level == 11) { /* too many levels: show the first 10 and last 11 */
        lua_pushfstring(L, "\n\t...\t(skipping %d levels)", last - 21);
        luaL_addvalue(&b);
        level = last - 11; /* the loop goes on with level last - 10 */
        continue;
      }
      if (!lua_getstack(L, level, &ar)) break;
      lua_getinfo(L, "Slnt", &ar);
      if (ar.currentline <= 0) lua_pushfstring(L, "\n\t%s: in ", ar.short_src);
      else lua_pushfstring(L, "\n\t%s:%d: in ", ar.short_src, ar.currentline);
      luaL_addvalue(&b);
      pushfuncname(L, &ar);
      luaL_addvalue(&b);
      if (ar.istailcall) luaL_addstring(&b, "\n\t(...tail calls...)");
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* host.pcall(f, ...) -> true, results... | false, message-with-traceback.
 * Ctrl-C while f runs raises "interrupted" inside f. */
static int host_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int saved = pcall_depth;
  pcall_depth = stack_depth(L);
  lua_pushcfunction(L, repl_msghandler);
  lua_insert(L, 1);
  globalL = L;
  clear_stop_hook(L); /* nothing left over from an earlier Ctrl-C */
  setsignal(SIGINT, laction);
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 1);
  setsignal(SIGINT, laction); /* re-arm: the REPL itself stays interruptible */
  clear_stop_hook(L);
  pcall_depth = saved;
  lua_pushboolean(L, status == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

/* host.clock() -> seconds of a monotonic wall clock */
static int host_clock(lua_State *L) {
  lua_pushnumber(L, ai_clock());
  return 1;
}

/* Reads a line from stdin without readline; the prompt (if any) goes to stdout. */
static int plain_readline(lua_State *L, const char *prompt) {
  char *line = NULL;
  size_t cap = 0;
  if (prompt && *prompt) {
    fputs(prompt, stdout);
  }
  fflush(stdout);
  setsignal(SIGINT, SIG_DFL); /* reading from a pipe: Ctrl-C ends the program */
  ssize_t n = getline(&line, &cap, stdin);
  setsignal(SIGINT, laction);
  if (n < 0) {
    free(line);
    clearerr(stdin);
    lua_pushnil(L);
    return 1;
  }
  if (n > 0 && line[n - 1] == '\n') n--;
  if (n > 0 && line[n - 1] == '\r') n--;
  lua_pushlstring(L, line, (size_t)n);
  free(line);
  return 1;
}

#ifndef AIART_NO_READLINE

static lua_State *complete_L = NULL;
static char **completions = NULL;
static size_t ncompletions = 0;

static void free_completions(void) {
  for (size_t i = 0; i < ncompletions; i++) free(completions[i]);
  free(completions);
  completions = NULL;
  ncompletions = 0;
}

static char *completion_generator(const char *text, int state) {
  static size_t next;
  (void)text;
  if (state == 0) next = 0;
  if (next < ncompletions) {
    char *s = completions[next];
    completions[next++] = NULL; /* readline takes ownership */
    return s;
  }
  return NULL;
}

/* Asks repl.complete(text, line_before) for candidates. */
static char **attempted_completion(const char *text, int start, int end) {
  (void)end;
  lua_State *L = complete_L;
  rl_attempted_completion_over = 1; /* no file names unless Lua returns nil */
  rl_completion_append_character = '\0';
  free_completions();
  if (L == NULL || repl_ref == LUA_NOREF) return NULL;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_ref);
  if (!lua_istable(L, -1)) { lua_settop(L, top); return NULL; }
  lua_getfield(L, -1, "complete");
  lua_pushstring(L, text);
  lua_pushlstring(L, rl_line_buffer, (size_t)start);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) { lua_settop(L, top); return NULL; }
  if (lua_isnil(L, -1)) {
    lua_settop(L, top);
    rl_attempted_completion_over = 0; /* readline's default: file names */
    rl_completion_append_character = ' ';
    return NULL;
  }
  if (lua_istable(L, -1)) {
    size_t n = (size_t)lua_rawlen(L, -1);
    completions = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 1; completions && i <= n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      const char *s = lua_tostring(L, -1);
      if (s) completions[ncompletions++] = strdup(s);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  if (ncompletions == 0) return NULL;
  char **m = rl_completion_matches(text, completion_generator);
  free_completions();
  return m;
}

static volatile sig_atomic_t got_sigint = 0, got_sigwinch = 0;
static char *rl_line = NULL;
static int rl_got_line = 0;

static void rl_sigint(int sig) {
  (void)sig;
  got_sigint = 1;
}

static void rl_sigwinch(int sig) {
  (void)sig;
  got_sigwinch = 1;
}

static void rl_line_handler(char *line) {
  rl_callback_handler_remove();
  rl_line = line;
  rl_got_line = 1;
}

/* readline through its callback interface so that Ctrl-C can abandon the line cleanly.
 * Pushes the line, nil at EOF, or false when Ctrl-C was pressed. */
static int tty_readline(lua_State *L, const char *prompt) {
  sigset_t block, orig;
  struct sigaction old_winch;
  int interrupted = 0, fd = fileno(rl_instream ? rl_instream : stdin);
  fflush(stdout);
  fflush(stderr);
  complete_L = L;
  rl_line = NULL;
  rl_got_line = 0;
  got_sigint = 0;
  setsignal(SIGINT, rl_sigint);
  sigaction(SIGWINCH, NULL, &old_winch);
  setsignal(SIGWINCH, rl_sigwinch);
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &orig);
  rl_callback_handler_install(prompt, rl_line_handler);
  while (!rl_got_line) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int r = pselect(fd + 1, &fds, NULL, NULL, NULL, &orig);
    if (got_sigint) {
      got_sigint = 0;
      interrupted = 1;
      rl_point = rl_end;
      rl_redisplay();
      fputs("^C", rl_outstream ? rl_outstream : stdout);
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_replace_line("", 0);
      rl_callback_handler_remove();
      fputc('\n', rl_outstream ? rl_outstream : stdout);
      break;
    }
    if (got_sigwinch) {
      got_sigwinch = 0;
      rl_resize_terminal();
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      rl_callback_handler_remove(); /* input broken: behave as EOF */
      break;
    }
    if (r > 0) rl_callback_read_char();
  }
  sigprocmask(SIG_SETMASK, &orig, NULL);
  sigaction(SIGWINCH, &old_winch, NULL);
  setsignal(SIGINT, laction);
  complete_L = NULL;
  if (interrupted) {
    lua_pushboolean(L, 0);
  } else if (rl_line == NULL) {
    lua_pushnil(L);
  } else {
    lua_pushstring(L, rl_line);
    free(rl_line);
    rl_line = NULL;
  }
  return 1;
}
#endif

/* host.readline(prompt) -> line | nil (end of input) | false (Ctrl-C at the prompt) */
static int host_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
#ifndef AIART_NO_READLINE
  if (use_readline) return tty_readline(L, prompt);
#endif
  return plain_readline(L, prompt);
}

/* host.add_history(line): adds a line to readline's in-memory history. */
static int host_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
#ifndef AIART_NO_READLINE
  if (use_readline && *line) add_history(line);
#else
  (void)line;
#endif
  return 0;
}

/* host.read_history(path, max) -> ok: loads the file and limits the history to max entries. */
static int host_read_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1000);
#ifndef AIART_NO_READLINE
  /* timestamps delimit entries in the file, so multi-line chunks come back as one entry */
  history_comment_char = '#';
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  if (max > 0) stifle_history((int)max);
  lua_pushboolean(L, use_readline && read_history(path) == 0);
#else
  (void)path; (void)max;
  lua_pushboolean(L, 0);
#endif
  return 1;
}

/* host.append_history(path, max) -> ok: appends the newest entry to the file (creating it),
 * then truncates the file to max entries. */
static int host_append_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1000);
  int ok = 0;
#ifndef AIART_NO_READLINE
  if (use_readline) {
    if (access(path, F_OK) != 0) ok = write_history(path) == 0;
    else ok = append_history(1, path) == 0;
    if (ok && max > 0) history_truncate_file(path, (int)max);
  }
#else
  (void)path; (void)max;
#endif
  lua_pushboolean(L, ok);
  return 1;
}

static const luaL_Reg host_funcs[] = {
  {"readline", host_readline},
  {"add_history", host_add_history},
  {"read_history", host_read_history},
  {"append_history", host_append_history},
  {"pcall", host_pcall},
  {"clock", host_clock},
  {NULL, NULL},
};

static void push_host(lua_State *L) {
  luaL_newlib(L, host_funcs);
  lua_pushboolean(L, interactive);
  lua_setfield(L, -2, "interactive");
  lua_pushboolean(L, stdin_tty);
  lua_setfield(L, -2, "stdin_tty");
  lua_pushboolean(L, stdout_tty);
  lua_setfield(L, -2, "stdout_tty");
  lua_pushboolean(L, stderr_tty);
  lua_setfield(L, -2, "stderr_tty");
  lua_pushstring(L, progname);
  lua_setfield(L, -2, "progname");
  lua_pushliteral(L, PROGNAME " " AIART_VERSION " (" LUA_RELEASE ")");
  lua_setfield(L, -2, "version");
}

/* ------------------------------------------------------------------------------------------ */
/* the REPL                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Pushes a line read with host.readline; returns 1 for a line, 0 at end of input, -1 on Ctrl-C. */
static int basic_readline(lua_State *L, int firstline) {
  lua_pushcfunction(L, host_readline);
  lua_pushstring(L, interactive ? (firstline ? "> " : ">> ") : "");
  lua_call(L, 1, 1);
  if (lua_type(L, -1) == LUA_TSTRING) return 1;
  int r = lua_isnil(L, -1) ? 0 : -1;
  lua_pop(L, 1);
  return r;
}

static int incomplete(lua_State *L, int status) {
  size_t lmsg;
  const char *msg;
  if (status != LUA_ERRSYNTAX || (msg = lua_tolstring(L, -1, &lmsg)) == NULL) return 0;
  return lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0;
}

/* A minimal REPL (as lua.c's) used only when lua/aiart/repl cannot be loaded.
 * Returns 1 if no error happened. */
static int basic_repl(lua_State *L) {
  int ok = 1, r;
  for (;;) {
    lua_settop(L, 0);
    r = basic_readline(L, 1);
    if (r == 0) break;
    if (r < 0) continue;
    int status;
    for (;;) { /* stack: [chunk] */
      size_t len;
      const char *buf = lua_tolstring(L, 1, &len);
      const char *ret = lua_pushfstring(L, "return %s;", buf);
      status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
      if (status == LUA_OK) {
        lua_remove(L, 2);
        break;
      }
      lua_settop(L, 1);
      status = luaL_loadbuffer(L, buf, len, "=stdin"); /* [chunk, function or message] */
      if (!incomplete(L, status)) break;
      r = basic_readline(L, 0);
      if (r <= 0) break; /* keep the syntax error; Ctrl-C drops the chunk below */
      lua_remove(L, 2);
      lua_pushliteral(L, "\n");
      lua_insert(L, 2);
      lua_concat(L, 3);
    }
    if (r < 0) continue;
#ifndef AIART_NO_READLINE
    if (use_readline && lua_rawlen(L, 1) > 0) add_history(lua_tostring(L, 1));
#endif
    lua_remove(L, 1);
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status != LUA_OK) {
      ok = 0;
      const char *msg = lua_tostring(L, -1);
      l_message(NULL, msg ? msg : "(error object is not a string)");
    } else if (lua_gettop(L) > 0) {
      luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
      lua_getglobal(L, "print");
      lua_insert(L, 1);
      if (lua_pcall(L, lua_gettop(L) - 1, 0, 0) != LUA_OK) {
        ok = 0;
        l_message(NULL, lua_tostring(L, -1));
      }
    }
    fflush(stdout);
  }
  lua_settop(L, 0);
  if (interactive) lua_writeline();
  return ok;
}

/* Runs require("aiart.repl").run(host). Returns 1 if no error happened (pipe-mode status). */
static int doREPL(lua_State *L) {
  int ok;
  const char *oldprogname = progname;
  lua_settop(L, 0);
  stdin_tty = isatty(0);
  stdout_tty = isatty(1);
  stderr_tty = isatty(2);
  interactive = stdin_tty;
  use_readline = interactive;
#ifdef AIART_NO_READLINE
  use_readline = 0;
#else
  if (use_readline) {
    rl_readline_name = PROGNAME;
    rl_catch_signals = 0;
    rl_attempted_completion_function = attempted_completion;
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(+-*/%^~#,[])}?!";
    rl_completer_word_break_characters = rl_basic_word_break_characters;
    /* list the candidates at the first TAB (before ~/.inputrc is read, which may change it) */
    rl_variable_bind("show-all-if-ambiguous", "on");
  }
#endif
  globalL = L;
  setsignal(SIGINT, laction);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "aiart.repl");
  if (docall(L, 1, 1) != LUA_OK || !lua_istable(L, -1)) {
    const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "module is not a table";
    fprintf(stderr, "%s: cannot load the REPL module aiart.repl: %s\n", progname, msg);
    fprintf(stderr, "%s: using the basic REPL\n", progname);
    fflush(stderr);
    lua_settop(L, 0);
    ok = basic_repl(L);
    setsignal(SIGINT, SIG_DFL);
    return ok;
  }
  progname = NULL;
  lua_pushvalue(L, -1);
  repl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "run");
  push_host(L);
  int status = docall(L, 1, 1);
  progname = oldprogname;
  if (status != LUA_OK) {
    report(L, status);
    ok = 0;
  } else {
    ok = lua_toboolean(L, -1) || lua_isnone(L, -1);
  }
  setsignal(SIGINT, SIG_DFL);
  luaL_unref(L, LUA_REGISTRYINDEX, repl_ref);
  repl_ref = LUA_NOREF;
  lua_settop(L, 0);
  fflush(stdout);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script;
  int args = collectargs(argv, &script);
  int optlim = (script > 0) ? script : argc;
  luaL_checkversion(L);
  if (args == has_error) {
    print_usage(argv[script]);
    return 0;
  }
  int repl = (args & has_i) || (script < 1 && !(args & (has_e | has_v)));
  if (args & has_v) print_version(); /* the REPL shows its own banner on a terminal */
  if (args & has_E) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  setup_aiart(L, argv[0]);
  createargtable(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if ((args & has_e) || repl) install_ai_global(L);
  if (!(args & has_E)) {
    if (handle_luainit(L) != LUA_OK) return 0;
  }
  if (!runargs(L, argv, optlim)) return 0;
  if (script > 0) {
    if (handle_script(L, argv + script) != LUA_OK) return 0;
  }
  if (repl) {
    if (!doREPL(L)) return 0;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* OpenMP threads spin between parallel regions (libgomp's default spin count is 300,000
 * iterations). On a machine with anything else running, the spinning thread steals the core
 * that the work needs: training steps ran up to 10x slower in our measurements. libgomp reads
 * its settings when it loads, before main, so the first start sets a short spin and execs
 * itself once; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone. */
static void tune_openmp(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("AIART_NO_REEXEC")) return;
  setenv("GOMP_SPINCOUNT", "1000", 1);
  setenv("AIART_NO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv); /* on failure, run on with the default */
}

int main(int argc, char **argv) {
  int status, result;
  tune_openmp(argv);
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    l_message(argv[0], "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, &pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  result = lua_toboolean(L, -1);
  report(L, status);
  lua_close(L);
  return (result && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
