// Runs the Store contract against the in-memory store.

import { memoryStore } from "../../../adapters/store/memory_store.ts";
import { runStoreContract } from "../../contracts/store_contract.ts";

runStoreContract({ name: "memory", create: memoryStore });
