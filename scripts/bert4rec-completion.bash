# Bash completion for ./bert4rec: verbs, flags and the values of choice flags (--model, --engine, --provider, ...),
# answered by the executables' own command trees (System.CommandLine); paths fall back to file names.
# Enable it for the current shell with `source scripts/bert4rec-completion.bash`, or for every shell by adding that line
# (with the repository's absolute path) to ~/.bashrc. Completion needs a built tree (any ./bert4rec call builds it).
_bert4rec_complete() {
  local IFS=$'\n'
  COMPREPLY=($("${COMP_WORDS[0]}" "[suggest]" "${COMP_LINE:0:$COMP_POINT}" 2>/dev/null))
}
complete -o default -F _bert4rec_complete bert4rec ./bert4rec
