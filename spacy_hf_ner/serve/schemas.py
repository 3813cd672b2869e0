"""The server's request and response bodies (pydantic): the Hugging Face
Inference API's shapes, spaCy's Doc JSON and the page's render call."""
import re
from typing import Any, Dict, List, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Annotated

from ..ty import Function, Strategy

Text = Annotated[str, Field(min_length=1, description="A non-empty text.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenClassificationParameters(_Strict):
    aggregation_strategy: Optional[Strategy] = Field(
        None, description="none / simple / first / average / max; default: the component's"
    )
    ignore_labels: Optional[List[str]] = Field(None, description="labels left out; default: the component's")
    stride: Optional[Annotated[int, Field(ge=0, strict=True)]] = Field(
        None, description="overlap of the windows of a long text, in model tokens"
    )


class TextPair(_Strict):
    text: Text
    text_pair: Text


class TextClassificationParameters(_Strict):
    function_to_apply: Optional[Function] = Field(None, description="default: the component's")
    top_k: Optional[Annotated[int, Field(ge=1, strict=True)]] = Field(None, description="default: all labels")


class EntityOut(BaseModel):
    """An entity as the Inference API returns it ("entity" and "index" for
    strategy "none", else "entity_group")."""

    entity_group: Optional[str] = None
    entity: Optional[str] = None
    score: float
    index: Optional[int] = None
    word: str
    start: int
    end: int


class LabelScore(BaseModel):
    label: str
    score: float


class DocEntity(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: Optional[float] = None


class DocJSON(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str
    ents: List[DocEntity]
    tokens: List[Dict[str, Any]]
    cats: Dict[str, float] = {}


class ErrorResponse(BaseModel):
    error: str


class RenderResponse(BaseModel):
    ents_html: str
    dep_html: Optional[str] = None
    cats: Dict[str, float] = {}
    entities: List[DocEntity]


class Health(BaseModel):
    status: str
    models: Dict[str, str]
    stats: Dict[str, Any]


def request_models(max_inputs: int) -> Dict[str, Any]:
    """Request bodies with the server's `max_inputs` in their schema."""
    Many = Annotated[List[Text], Field(min_length=1, max_length=max_inputs)]

    class TokenClassificationRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"inputs": "My name is Sarah Jessica Parker and I work at Google in New York."},
                    {"inputs": ["Angela Merkel visited Paris."], "parameters": {"aggregation_strategy": "simple"}},
                ]
            },
        )
        inputs: Union[Text, Many]
        parameters: TokenClassificationParameters = TokenClassificationParameters()

    class TextClassificationRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"inputs": "I like you. I love you", "parameters": {"top_k": 1}},
                    {"inputs": {"text": "A man is eating.", "text_pair": "Someone eats."}},
                ]
            },
        )
        inputs: Union[
            Text,
            TextPair,
            Annotated[List[Union[Text, TextPair]], Field(min_length=1, max_length=max_inputs)],
        ]
        parameters: TextClassificationParameters = TextClassificationParameters()

    class DocRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid", json_schema_extra={"examples": [{"inputs": "Angela Merkel visited Paris."}]}
        )
        inputs: Union[Text, Many]

    class RenderRequest(_Strict):
        model_config = ConfigDict(
            extra="forbid", json_schema_extra={"examples": [{"inputs": "Angela Merkel visited Paris."}]}
        )
        inputs: Optional[Text] = Field(None, description="the text (as every other endpoint takes it)")
        text: Optional[Text] = Field(None, description="deprecated: the text; use `inputs`", json_schema_extra={"deprecated": True})
        model: Optional[str] = Field(None, description="a served model name; default: the first")
        aggregation_strategy: Optional[Strategy] = Field(
            None, description="render the model's entities with this strategy; default: the pipeline's doc.ents"
        )

        @model_validator(mode="after")
        def one_text(self) -> "RenderRequest":
            if (self.inputs is None) == (self.text is None):
                raise ValueError("give the text as `inputs` (`text` is its deprecated name), not both")
            if self.inputs is None:
                self.inputs = self.text
            return self

    return {
        "token": TokenClassificationRequest,
        "text": TextClassificationRequest,
        "doc": DocRequest,
        "render": RenderRequest,
    }


def validation_message(errors: Sequence[Dict[str, Any]]) -> str:
    """One line naming each invalid field; the alternatives of a union (e.g.
    `inputs`: a string or a list of strings) are joined with "or"."""
    by_field: Dict[str, List[str]] = {}
    for error in errors:
        where = ".".join(
            str(part)
            for part in error.get("loc", ())
            if part != "body" and not (isinstance(part, str) and _UNION_TAG.search(part))
        )
        messages = by_field.setdefault(where or "body", [])
        if error.get("msg") not in messages:
            messages.append(str(error.get("msg", "invalid")))
    return "invalid request: " + "; ".join(f"{where}: {' or '.join(msgs)}" for where, msgs in by_field.items())


_UNION_TAG = re.compile(r"[\[\]-]|^(str|int|TextPair)$")


ERRORS = {
    413: {"model": ErrorResponse, "description": "Request body too large, or more model windows than the server allows"},
    422: {"model": ErrorResponse, "description": "Invalid request (the message names the field)"},
    503: {"model": ErrorResponse, "description": "Queue full or shutting down; retry later"},
    504: {"model": ErrorResponse, "description": "Not answered within the server's timeout"},
}
