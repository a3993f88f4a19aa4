/** XEP-0004 data forms: building the forms the tree and its commands return, reading submissions. */
import { el, type Element } from "../../xml/element.js";
import { NS } from "../../xmpp/namespaces.js";

export interface FormField {
  var: string;
  label?: string;
  type?: "hidden" | "text-single" | "text-multi" | "list-single" | "fixed";
  values: string[];
  options?: { label: string; value: string }[];
  required?: boolean;
}

export function dataForm(
  type: "form" | "result",
  formType: string | undefined,
  fields: FormField[],
  title?: string,
  instructions?: string,
): Element {
  const form = el("x", { xmlns: NS.DATA, type });
  if (title !== undefined) form.append(el("title", {}, title));
  if (instructions !== undefined) form.append(el("instructions", {}, instructions));
  if (formType !== undefined)
    form.append(fieldElement({ var: "FORM_TYPE", type: "hidden", values: [formType] }));
  for (const field of fields) form.append(fieldElement(field));
  return form;
}

function fieldElement(field: FormField): Element {
  const attrs: Record<string, string> = { var: field.var };
  if (field.type !== undefined) attrs.type = field.type;
  if (field.label !== undefined) attrs.label = field.label;
  const element = el("field", attrs);
  if (field.required === true) element.append(el("required"));
  for (const option of field.options ?? [])
    element.append(el("option", { label: option.label }, el("value", {}, option.value)));
  for (const value of field.values) element.append(el("value", {}, value));
  return element;
}

/** The values of a submitted form (`<x type='submit'/>`) by field var; undefined if there is none. */
export function submittedValues(parent: Element): Map<string, string[]> | undefined {
  const form = parent.children.find(
    (c): c is Element => typeof c !== "string" && c.local === "x" && c.ns === NS.DATA,
  );
  if (form === undefined || form.attrs.type !== "submit") return undefined;
  const values = new Map<string, string[]>();
  for (const child of form.children) {
    if (typeof child === "string" || child.local !== "field") continue;
    const name = child.attrs.var;
    if (name === undefined) continue;
    values.set(
      name,
      child.children
        .filter((v): v is Element => typeof v !== "string" && v.local === "value")
        .map((v) => v.text().trim()),
    );
  }
  return values;
}
