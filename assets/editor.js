// The learner pages' code editor: CodeMirror 6 with Python and JavaScript modes, exposed as
// window.COEditor.create(parent, {doc, language, label, onChange, keys}). Bundled by `make assets`.
import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment, Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { javascript } from "@codemirror/lang-javascript";

const modes = { python: () => python(), javascript: () => javascript() };

export function create(parent, options) {
  const language = new Compartment();
  const keys = options.keys || {};
  const shortcuts = Prec.highest(
    keymap.of([
      { key: "Mod-Enter", run: () => (keys.run ? (keys.run(), true) : false) },
      { key: "Shift-Mod-Enter", run: () => (keys.submit ? (keys.submit(), true) : false) },
    ]),
  );
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: options.doc || "",
      extensions: [
        shortcuts,
        basicSetup,
        keymap.of([indentWithTab]),
        // Long lines wrap: no sideways scrolling on a phone, and nothing scrolls that a keyboard cannot reach.
        EditorView.lineWrapping,
        language.of((modes[options.language] || modes.python)()),
        EditorView.contentAttributes.of({ "aria-label": options.label || "Code editor" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged && options.onChange) options.onChange(update.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    setLanguage: (name) => view.dispatch({ effects: language.reconfigure((modes[name] || modes.python)()) }),
    focus: () => view.focus(),
  };
}
