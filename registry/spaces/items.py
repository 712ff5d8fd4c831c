"""Files and folders of a space by id. The id is the one WebDAV clients read as `oc:id` and the
Graph API's item id, `<space-id>!<number>` (a space's root: `<space-id>!<space-id>`, the
drive's `root.id`); the provider holding the space keeps it with the item through renames,
moves and overwrites (`storage.file_ids`), and finds the item's path."""

from __future__ import annotations

from collections.abc import Mapping

from registry.access.principal import Principal
from registry.core.errors import NotFound, NotSupported
from registry.core.text import is_identifier
from registry.spaces.service import SpaceService
from registry.spaces.views import SpaceView
from storage import ItemLocator, PathNotFound, SpaceStore


class ItemPaths:
    def __init__(self, spaces: SpaceService, providers: Mapping[str, SpaceStore]) -> None:
        self._spaces = spaces
        self._providers = providers

    async def locate(self, principal: Principal, item_id: str) -> tuple[SpaceView, str]:
        """The space (which the caller may see) and the path below its root (`/a/b`) of the
        item `item_id`; NotFound if there is none the caller may see."""
        space_id, bang, _number = item_id.partition("!")
        if not bang or not is_identifier(item_id):
            raise NotFound(f"no item {item_id}")
        view = await self._spaces.get_visible(principal, space_id)
        provider = self._providers.get(view.space.provider)
        if not isinstance(provider, ItemLocator):
            raise NotSupported("the storage holding this space cannot find items by id")
        try:
            return view, await provider.item_path(space_id, item_id)
        except PathNotFound as exc:
            raise NotFound(f"no item {item_id}") from exc
