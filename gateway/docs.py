"""`/docs`: one self-contained HTML page that renders the OpenAPI document (inline JS and CSS, no
CDN, no external URL), so the API reference works offline and under a strict CSP."""

import base64
import hashlib
import json
from typing import Any

_STYLE = """
:root{--fg:#1d2329;--mute:#5b6670;--line:#dde3e8;--bg:#f7f9fa;--accent:#17633a}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,sans-serif;color:var(--fg)}
header{padding:14px 24px;border-bottom:1px solid var(--line);display:flex;gap:16px;
align-items:center}header h1{font-size:18px;margin:0}header input{flex:1;max-width:420px;
padding:6px 10px;border:1px solid var(--line);border-radius:6px;font:inherit}
main{display:grid;grid-template-columns:280px 1fr;min-height:calc(100vh - 60px)}
nav{border-right:1px solid var(--line);background:var(--bg);padding:12px;overflow:auto;
max-height:calc(100vh - 60px);position:sticky;top:0}nav h3{margin:12px 0 4px;font-size:12px;
text-transform:uppercase;color:var(--mute)}nav a{display:block;padding:2px 4px;
color:var(--fg);text-decoration:none;font-size:13px;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}nav a:hover{background:var(--line)}#ops{padding:16px 28px;overflow:auto}
.op{border:1px solid var(--line);border-radius:8px;margin:0 0 18px;padding:12px 16px}
.op h2{font-size:15px;margin:0 0 6px;font-family:ui-monospace,monospace;word-break:break-all}
.m{display:inline-block;min-width:62px;text-align:center;border-radius:4px;color:#fff;
font-size:12px;padding:1px 6px;margin-right:8px}.get{background:#2a6fb0}.post{background:#17633a}
.put,.patch{background:#a86b00}.delete{background:#a8322d}.perm{color:var(--mute)}
code{font-family:ui-monospace,monospace;background:var(--bg);padding:0 3px;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-bottom:1px solid var(--line);
text-align:left;padding:4px 6px;vertical-align:top;font-size:13px}th{color:var(--mute);
font-weight:600}.req{color:#a8322d;font-size:11px}.schema{margin:4px 0 4px 12px}
details summary{cursor:pointer;color:var(--accent)}.intro{color:var(--mute);max-width:820px}
"""

_SCRIPT = """
(function(){
const doc=JSON.parse(document.getElementById('openapi').textContent);
const schemas=(doc.components||{}).schemas||{};
const el=(tag,attrs,...kids)=>{const e=document.createElement(tag);
  for(const [k,v] of Object.entries(attrs||{})){
    if(k==='class')e.className=v;else e.setAttribute(k,v);}
  for(const k of kids){if(k!=null)e.append(k.nodeType?k:String(k));}return e;};
const refName=r=>r.split('/').pop();
function typeOf(s){if(!s)return 'any';if(s.$ref)return refName(s.$ref).split('.').pop();
  if(s.enum)return 'enum';if(s.type==='array')return typeOf(s.items)+'[]';
  if(s.type==='object'&&s.additionalProperties&&s.additionalProperties!==true)
    return 'map<string, '+typeOf(s.additionalProperties)+'>';
  const t=Array.isArray(s.type)?s.type.join(' | '):(s.type||'any');
  return s.format?t+' ('+s.format+')':t;}
function schemaView(s,depth,seen){
  if(!s)return el('span',{},'any');
  if(s.$ref){const name=refName(s.$ref);const target=schemas[name]||{};
    if(seen.has(name)||depth>4)return el('code',{},name.split('.').pop());
    const next=new Set(seen);next.add(name);return schemaView(target,depth,next);}
  if(s.type==='array')return schemaView(s.items,depth,seen);
  if(!s.properties){return s.enum?el('span',{},s.enum.join(' | ')):el('code',{},typeOf(s));}
  const required=new Set(s.required||[]);const table=el('table',{},
    el('tr',{},el('th',{},'field'),el('th',{},'type'),el('th',{},'')));
  for(const [name,prop] of Object.entries(s.properties)){
    const inner=prop.$ref||(prop.items&&prop.items.$ref);
    const cell=el('td',{},el('code',{},typeOf(prop)));
    if(prop.enum)cell.append(el('div',{class:'perm'},prop.enum.join(' | ')));
    if(inner&&depth<4){const d=el('details',{},el('summary',{},'fields'));
      d.append(el('div',{class:'schema'},schemaView(prop.$ref?prop:prop.items,depth+1,seen)));
      cell.append(d);}
    const notes=[];if(required.has(name))notes.push(el('span',{class:'req'},'required '));
    if(prop.readOnly)notes.push('output only ');if(prop.writeOnly)notes.push('input only');
    table.append(el('tr',{},el('td',{},el('code',{},name)),cell,el('td',{},...notes)));}
  return table;}
function opView(path,method,op){
  const id='op-'+op.operationId.replace(/[^A-Za-z0-9]/g,'-');
  const who=op['x-public']?'public: no credentials':op['x-authenticated']?
    'any signed-in caller, about itself':'permission '+op['x-permission'];
  const text=(method+' '+path+' '+op.operationId+' '+who).toLowerCase();
  const box=el('section',{class:'op',id:id,'data-text':text},
    el('h2',{},el('span',{class:'m '+method},method.toUpperCase()),path),
    el('div',{},el('code',{},op.operationId),' ',el('span',{class:'perm'},who)));
  if(op.description)box.append(el('p',{},op.description));
  const params=(op.parameters||[]).filter(p=>p.in!=='header');
  if(params.length){const t=el('table',{},el('tr',{},el('th',{},'parameter'),el('th',{},'in'),
      el('th',{},'type'),el('th',{},'')));
    for(const p of params)t.append(el('tr',{},el('td',{},el('code',{},p.name)),el('td',{},p.in),
      el('td',{},el('code',{},typeOf(p.schema))),el('td',{},p.required?el('span',{class:'req'},'required'):'')));
    box.append(el('h4',{},'Parameters'),t);}
  const body=op.requestBody&&op.requestBody.content['application/json'];
  if(body){const d=el('details',{open:''},el('summary',{},'Request body'));
    d.append(el('div',{class:'schema'},schemaView(body.schema,0,new Set())));box.append(d);}
  const ok=op.responses&&op.responses['200'];
  if(ok&&ok.content){const d=el('details',{},el('summary',{},'Response: '+ok.description));
    const shown=schemaView(ok.content['application/json'].schema,0,new Set());
    d.append(el('div',{class:'schema'},shown));
    box.append(d);}
  return [box,id];}
const nav=document.getElementById('nav'),ops=document.getElementById('ops');
const intro=el('p',{class:'intro'},(doc.info||{}).description||'');ops.append(intro);
const groups={};
for(const [path,methods] of Object.entries(doc.paths||{}))
  for(const [method,op] of Object.entries(methods)){
    const tag=(op.tags||['other'])[0];(groups[tag]=groups[tag]||[]).push([path,method,op]);}
for(const tag of Object.keys(groups).sort()){
  nav.append(el('h3',{},tag));ops.append(el('h3',{},tag));
  for(const [path,method,op] of groups[tag]){const [box,id]=opView(path,method,op);
    ops.append(box);nav.append(el('a',{href:'#'+id,'data-for':id},method.toUpperCase()+' '+path));}}
document.getElementById('q').addEventListener('input',e=>{const q=e.target.value.toLowerCase();
  for(const box of ops.querySelectorAll('.op')){const hit=box.dataset.text.includes(q);
    box.style.display=hit?'':'none';
    const link=nav.querySelector('[data-for="'+box.id+'"]');
    if(link)link.style.display=hit?'':'none';}});
})();
"""


def docs_page(document: dict[str, Any]) -> str:
    """The HTML page; the document is embedded as JSON (with `<` escaped, so it cannot end the
    script element)."""
    embedded = json.dumps(document, separators=(",", ":")).replace("<", "\\u003c")
    title = str(document.get("info", {}).get("title", "API"))
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{safe_title} reference</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{safe_title}</h1>"
        '<input id=q type=search placeholder="Filter operations, paths, permissions">'
        '<a href="/openapi.json">openapi.json</a></header>'
        "<main><nav id=nav></nav><div id=ops></div></main>"
        f'<script type="application/json" id=openapi>{embedded}</script>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only the page's own script and style may run: a strict policy, no 'unsafe-inline'.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
