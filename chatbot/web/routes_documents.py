"""``/api/documents``: your private documents (upload → private ingest, list, delete)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response, UploadFile

from chatbot.web.context import Ctx, SignedIn

router = APIRouter(prefix="/api", tags=["documents"])


@router.get("/documents", summary="Your private documents and how many public ones there are")
def list_documents(principal: SignedIn, context: Ctx) -> dict[str, Any]:
    docs = context.documents.list(principal.user_id)
    return {
        "documents": [asdict(d) for d in docs],
        "public_count": context.documents.public_count(),
    }


@router.post(
    "/documents",
    status_code=201,
    summary="Upload a document; it is ingested for you only",
    responses={413: {"description": "larger than the upload limit"}},
)
def upload_document(file: UploadFile, principal: SignedIn, context: Ctx) -> dict[str, Any]:
    result = context.documents.add(principal.user_id, file.filename or "", file.file)
    return {"document": asdict(result.document), "status": result.status}


@router.delete("/documents/{doc_id}", status_code=204, summary="Delete one of your documents")
def delete_document(doc_id: str, principal: SignedIn, context: Ctx) -> Response:
    context.documents.delete(principal.user_id, doc_id)
    return Response(status_code=204)
