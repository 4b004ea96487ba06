#pragma once
// A backup set's manifest (`pgbackrest repo-get backup/STANZA/LABEL/backup.manifest`): what a
// restore writes, file by file, so that the disk check can count a selective restore.
#include <cstdint>
#include <set>
#include <string_view>

#include "core/error.hpp"

namespace agent {

// The bytes a restore writes: every file of [target:file] but those of the databases in
// `zeroed` (pg_data/base/OID/..., pg_tblspc/N/PG_*/OID/...), which pgBackRest's --db-include
// leaves as sparse zeroed files that take no space.
Result<std::uint64_t> restored_bytes(std::string_view manifest, const std::set<std::uint32_t>& zeroed);

}  // namespace agent
