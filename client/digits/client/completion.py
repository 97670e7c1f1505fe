"""Shell completion for ``digits``, generated from its argument parser: commands,
subcommands and their options complete in bash and zsh (``digits completion bash``)."""

from __future__ import annotations

import argparse


def _tree(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    """``{"digits datasets": ["create", "list", ...], "digits datasets create": ["--name", ...]}``"""
    words = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    tree: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                tree.update(_tree(sub, f"{path} {name}".strip()))
    tree[path] = sorted(set(words))
    return tree


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    tree = _tree(parser)
    cases = "\n".join(
        f'        "{path}") words="{" ".join(words)}" ;;' for path, words in sorted(tree.items())
    )
    body = f"""_digits_complete() {{
    local cur path="" word words
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in -*) ;; *) [[ -n "$(_digits_words "${{path:+$path }}$word")" ]] && path="${{path:+$path }}$word" ;; esac
    done
    COMPREPLY=($(compgen -W "$(_digits_words "$path")" -- "$cur"))
}}
_digits_words() {{
    local words=""
    case "$1" in
{cases}
    esac
    echo "$words"
}}
"""
    if shell == "zsh":
        return (
            "autoload -U +X bashcompinit && bashcompinit\n"
            + body
            + "complete -F _digits_complete digits"
        )
    return body + "complete -F _digits_complete digits"
